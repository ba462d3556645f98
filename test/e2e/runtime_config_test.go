package e2e

// UpdateRuntimeConfig: the kubelet hands the runtime its node's pod CIDR,
// and pods started afterwards take addresses from it.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

func TestUpdateRuntimeConfigSetsThePodCIDR(t *testing.T) {
	t.Parallel()
	const (
		bridge   = "crirtcidr0" // its own bridge and subnets, away from other tests
		initial  = "10.79.0.0/24"
		nodeCIDR = "10.78.5.0/24"
	)
	d := framework.NewDaemon(t, framework.Options{Binary: binaryFor(t), Args: []string{"--registries-conf", registriesConf}})
	// A drop-in that sorts after the framework's network (d.Net).
	conf := fmt.Sprintf("[network]\ndefault_bridge = %q\ndefault_subnet = %q\n", bridge, initial)
	if err := os.WriteFile(filepath.Join(d.Dir, "config.d", "50-network.toml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The default bridge, and the one the pod CIDR got (bridge-<hash>).
		links, _ := net.Interfaces()
		for _, l := range links {
			if strings.HasPrefix(l.Name, bridge) {
				_ = exec.Command("ip", "link", "del", l.Name).Run()
			}
		}
		for _, s := range []string{initial, nodeCIDR} {
			_ = exec.Command("iptables", "-t", "nat", "-D", "POSTROUTING", "-s", s, "!", "-d", s,
				"-m", "comment", "--comment", "cri-runtime built-in network", "-j", "MASQUERADE").Run()
		}
	})
	if err := d.Start(); err != nil {
		t.Fatalf("start: %v\n%s", err, d.Logs())
	}
	cleanupPods(t, d)
	in := func(ip, cidr string) bool {
		_, n, _ := net.ParseCIDR(cidr)
		return n.Contains(net.ParseIP(ip))
	}
	ipOf := func(id string) string { return podStatus(t, d, id, false).GetStatus().GetNetwork().GetIp() }

	before := runPod(t, d, podConfig("before"))
	if ip := ipOf(before); !in(ip, initial) {
		t.Fatalf("pod before UpdateRuntimeConfig has IP %s; want one from the default subnet %s", ip, initial)
	}
	rc := d.RawRuntime(t)
	for _, bad := range []string{"10.78.5.0", "10.78.5.0/40"} {
		_, err := rc.UpdateRuntimeConfig(ctxT(t), &runtimeapi.UpdateRuntimeConfigRequest{RuntimeConfig: &runtimeapi.RuntimeConfig{NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: bad}}})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("UpdateRuntimeConfig(%q) = %v; want InvalidArgument", bad, err)
		}
	}
	if err := d.Runtime.UpdateRuntimeConfig(ctxT(t), &runtimeapi.RuntimeConfig{NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: nodeCIDR}}); err != nil {
		t.Fatalf("UpdateRuntimeConfig(%s): %v", nodeCIDR, err)
	}
	after := runPod(t, d, podConfig("after"))
	if ip := ipOf(after); !in(ip, nodeCIDR) {
		t.Errorf("pod after UpdateRuntimeConfig has IP %s; want one from the pod CIDR %s", ip, nodeCIDR)
	}
	if ip := ipOf(before); !in(ip, initial) {
		t.Errorf("the earlier pod's IP became %s; want it kept", ip)
	}
	st, err := d.Runtime.Status(ctxT(t), true)
	if err != nil || st.Info["podCIDR"] != `"`+nodeCIDR+`"` {
		t.Errorf("verbose Status podCIDR = %q (%v); want %q", st.GetInfo()["podCIDR"], err, nodeCIDR)
	}

	// The kubelet says it once; a restarted runtime must remember it.
	if err := d.Stop(syscall.SIGTERM, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatalf("restart: %v\n%s", err, d.Logs())
	}
	later := runPod(t, d, podConfig("later"))
	if ip := ipOf(later); !in(ip, nodeCIDR) {
		t.Errorf("pod after a restart has IP %s; want one from the recorded pod CIDR %s", ip, nodeCIDR)
	}
	// The earlier pod's address, from the old range, is still released.
	for _, id := range []string{before, after, later} {
		if err := d.Runtime.RemovePodSandbox(ctxT(t), id); err != nil {
			t.Fatalf("RemovePodSandbox(%s): %v", id, err)
		}
	}
	if l := leases(t, d.Root); len(l) != 0 {
		t.Errorf("leases left after removing every pod: %v", l)
	}
}
