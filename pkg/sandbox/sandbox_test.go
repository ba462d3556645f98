package sandbox

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func TestCheckSysctls(t *testing.T) {
	own := map[string]bool{"net": true, "ipc": true, "uts": true}
	hostNet := map[string]bool{"ipc": true}
	for _, tc := range []struct {
		name    string
		sysctls map[string]string
		own     map[string]bool
		bad     string // "" = accepted
	}{
		{"net", map[string]string{"net.ipv4.ip_forward": "1"}, own, ""},
		{"slash spelling", map[string]string{"net/core/somaxconn": "1024"}, own, ""},
		{"ipc", map[string]string{"kernel.shm_rmid_forced": "1", "fs.mqueue.msg_max": "10", "kernel.sem": "1 2 3 4"}, own, ""},
		{"uts", map[string]string{"kernel.domainname": "example"}, own, ""},
		{"not namespaced", map[string]string{"kernel.panic": "1"}, own, "kernel.panic"},
		{"vm", map[string]string{"vm.swappiness": "1"}, own, "vm.swappiness"},
		{"net on host network", map[string]string{"net.ipv4.ip_forward": "1"}, hostNet, "net.ipv4.ip_forward"},
		{"ipc on host ipc", map[string]string{"kernel.msgmax": "1"}, map[string]bool{"net": true}, "kernel.msgmax"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkSysctls(tc.sysctls, tc.own)
			if tc.bad == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.bad) {
				t.Fatalf("checkSysctls = %v; want InvalidArgument naming %s", err, tc.bad)
			}
		})
	}
}

func TestResolvConf(t *testing.T) {
	got, err := resolvConf(&DNSConfig{Servers: []string{"10.0.0.10", "10.0.0.11"}, Searches: []string{"ns.svc.cluster.local", "svc.cluster.local"}, Options: []string{"ndots:5", "edns0"}}, "/nonexistent")
	if err != nil {
		t.Fatal(err)
	}
	want := "search ns.svc.cluster.local svc.cluster.local\nnameserver 10.0.0.10\nnameserver 10.0.0.11\noptions ndots:5 edns0\n"
	if string(got) != want {
		t.Fatalf("resolv.conf:\n%s\nwant:\n%s", got, want)
	}
	host := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(host, []byte("nameserver 1.1.1.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dns := range []*DNSConfig{nil, {}} {
		got, err := resolvConf(dns, host)
		if err != nil || string(got) != "nameserver 1.1.1.1\n" {
			t.Fatalf("no DNS settings: %q, %v; want the host's file", got, err)
		}
	}
}

func TestHostsContent(t *testing.T) {
	got := string(hostsContent("web-0", []string{"10.77.0.5", "fd00::5"}))
	for _, line := range []string{"127.0.0.1\tlocalhost\n", "::1\tlocalhost ip6-localhost ip6-loopback\n", "10.77.0.5\tweb-0\n", "fd00::5\tweb-0\n"} {
		if !strings.Contains(got, line) {
			t.Errorf("hosts lacks %q:\n%s", line, got)
		}
	}
}

func TestBandwidth(t *testing.T) {
	b, err := bandwidth(map[string]string{IngressBandwidthAnnotation: "10M", EgressBandwidthAnnotation: "1Gi", "other": "x"})
	if err != nil || b.IngressRate != 10_000_000 || b.EgressRate != 1<<30 || b.IngressBurst == 0 || b.EgressBurst == 0 {
		t.Fatalf("bandwidth = %+v, %v", b, err)
	}
	if b, err := bandwidth(map[string]string{"app": "x"}); b != nil || err != nil {
		t.Fatalf("no annotations: %+v, %v; want nil", b, err)
	}
	for _, v := range []string{"fast", "-1M", "0"} {
		if _, err := bandwidth(map[string]string{EgressBandwidthAnnotation: v}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("egress %q: %v; want InvalidArgument", v, err)
		}
	}
}
