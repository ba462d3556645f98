package critest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
)

// The CNI floor: RunPodSandbox cannot take less than the network chain's
// ADD, nor StopPodSandbox less than its DEL, whatever the runtime. Here the
// chain runs alone — the same configuration file and plugins a daemon
// uses, through libcni as both daemons call it, on a fresh network
// namespace each time (made and removed outside the timing) — so that the
// table can say how much a runtime adds on top of it.

// cniFloor times n ADD and DEL pairs of the chain in confFile.
func cniFloor(t *testing.T, confFile string, binDirs []string, n int) (add, del []time.Duration) {
	t.Helper()
	list, err := libcni.ConfListFromFile(confFile)
	if err != nil {
		t.Fatal(err)
	}
	cni := libcni.NewCNIConfig(binDirs, nil)
	ctx := context.Background()
	for i := 0; i < n; i++ {
		id := randomID(t)
		ns := "crirt-floor-" + id[:12]
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add: %v: %s", err, out)
		}
		rt := &libcni.RuntimeConf{
			ContainerID: id, NetNS: filepath.Join("/var/run/netns", ns), IfName: "eth0",
			Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "floor"}, {"K8S_POD_NAME", ns},
				{"K8S_POD_INFRA_CONTAINER_ID", id}, {"K8S_POD_UID", id}},
			CapabilityArgs: map[string]any{},
		}
		start := time.Now()
		_, err := cni.AddNetworkList(ctx, list, rt)
		add = append(add, time.Since(start))
		if err != nil {
			_ = exec.Command("ip", "netns", "del", ns).Run()
			t.Fatalf("CNI ADD: %v", err)
		}
		start = time.Now()
		err = cni.DelNetworkList(ctx, list, rt)
		del = append(del, time.Since(start))
		_ = exec.Command("ip", "netns", "del", ns).Run()
		if err != nil {
			t.Fatalf("CNI DEL: %v", err)
		}
	}
	return add, del
}

func randomID(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// floorTable compares the pod calls of each runtime with the CNI floor
// under them.
func floorTable(ours, theirs *subject, add, del []time.Duration) string {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	line := func(op, floorName string, floor time.Duration) string {
		o, c := p50(ours.samples[op]), p50(theirs.samples[op])
		return fmt.Sprintf("| %s | %s %.1f | %.1f (%+.1f) | %.1f (%+.1f) | %.2f |\n", op, floorName, ms(floor),
			ms(o), ms(o-floor), ms(c), ms(c-floor), float64(o)/float64(floor))
	}
	return "\n| pod call | CNI floor ms (chain alone) | ours ms (over floor) | containerd ms (over floor) | ours / floor |\n|---|---|---|---|---|\n" +
		line("RunPodSandbox", "ADD", p50(add)) + line("StopPodSandbox", "DEL", p50(del))
}
