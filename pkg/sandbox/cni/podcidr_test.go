package cni

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// builtinRange is the subnet the built-in network hands addresses from.
func builtinRange(t *testing.T, m *Manager) (subnet, bridge string) {
	t.Helper()
	n, err := m.Network(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		Plugins []struct {
			Bridge string `json:"bridge"`
			IPAM   struct {
				Ranges [][]struct {
					Subnet string `json:"subnet"`
				} `json:"ranges"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(n.withoutPortmap.Bytes, &conf); err != nil {
		t.Fatal(err)
	}
	return conf.Plugins[0].IPAM.Ranges[0][0].Subnet, conf.Plugins[0].Bridge
}

func TestPodCIDRFromTheKubelet(t *testing.T) {
	confDir, binDir, root := t.TempDir(), t.TempDir(), t.TempDir()
	for _, p := range []string{"bridge", "host-local", "portmap"} {
		fakePlugin(t, binDir, p)
	}
	open := func() *Manager {
		m, err := New(Options{
			ConfDir: confDir, BinDirs: []string{binDir}, CacheDir: t.TempDir(),
			Builtin:     Builtin{Name: "builtin-net", Bridge: "br-test", Subnet: "10.99.0.0/16", DataDir: t.TempDir()},
			PodCIDRFile: filepath.Join(root, "pod-cidr.json"),
		}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		m.masquerade = func(string) error { return nil }
		return m
	}
	m := open()
	if got, br := builtinRange(t, m); got != "10.99.0.0/16" || br != "br-test" {
		t.Fatalf("before UpdateRuntimeConfig the range is %s on %s; want the default subnet and bridge", got, br)
	}
	for _, bad := range []string{"10.1.0.0", "10.1.0.0/33", "10.1.0.0/24,nonsense", "10.1.0.1/32"} {
		if err := m.SetPodCIDR(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("SetPodCIDR(%q) = %v; want InvalidArgument", bad, err)
		}
	}
	for _, keep := range []string{"", "fd00:1::/64"} { // nothing, or nothing IPv4
		if err := m.SetPodCIDR(keep); err != nil {
			t.Errorf("SetPodCIDR(%q) = %v", keep, err)
		}
	}
	if got, _ := builtinRange(t, m); got != "10.99.0.0/16" {
		t.Fatalf("after bad or empty CIDRs the range is %s; want it unchanged", got)
	}
	if err := m.SetPodCIDR("fd00:2::/64, 10.244.3.7/24"); err != nil {
		t.Fatal(err)
	}
	got, br := builtinRange(t, m)
	if got != "10.244.3.0/24" {
		t.Fatalf("after a dual-stack pod CIDR the range is %s; want its IPv4 network 10.244.3.0/24", got)
	}
	// The default bridge keeps its gateway for the pods already on it.
	if !strings.HasPrefix(br, "br-test-") || len(br) > 15 {
		t.Fatalf("the pod CIDR's bridge is %q; want br-test-<hash>, at most 15 characters", br)
	}
	if got, br2 := builtinRange(t, open()); got != "10.244.3.0/24" || br2 != br {
		t.Fatalf("after a restart the range is %s on %s; want the recorded pod CIDR on %s", got, br2, br)
	}
}
