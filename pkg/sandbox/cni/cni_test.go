package cni

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// fakePlugin installs a script that answers the CNI VERSION command.
func fakePlugin(t *testing.T, binDir, name string) {
	t.Helper()
	body := "#!/bin/sh\necho '{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"0.3.1\",\"0.4.0\",\"1.0.0\"]}'\n"
	if err := os.WriteFile(filepath.Join(binDir, name), []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeConf(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newManager(t *testing.T, confDir, binDir string) *Manager {
	t.Helper()
	m, err := New(Options{
		ConfDir:  confDir,
		BinDirs:  []string{binDir},
		CacheDir: t.TempDir(),
		Builtin:  Builtin{Name: "builtin-net", Bridge: "br-test", Subnet: "10.99.0.0/16", DataDir: t.TempDir()},
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	m.masquerade = func(string) error { return nil } // keep the host's iptables out of unit tests
	return m
}

func TestNetworkSelection(t *testing.T) {
	const bridgeList = `{"cniVersion":"1.0.0","name":"%s","plugins":[{"type":"bridge"},{"type":"portmap","capabilities":{"portMappings":true}}]}`
	for _, tc := range []struct {
		name    string
		files   map[string]string
		plugins []string // installed
		want    Network
		reason  string
	}{
		{
			name:    "empty dir uses the built-in network",
			plugins: []string{"bridge", "host-local", "portmap"},
			want:    Network{Name: "builtin-net", Source: BuiltinSource, Plugins: []string{"bridge", "portmap"}},
		},
		{
			name:    "first file in lexical order wins",
			files:   map[string]string{"20-b.conflist": `{"cniVersion":"1.0.0","name":"b","plugins":[{"type":"bridge"}]}`, "10-a.conflist": `{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"ptp"}]}`},
			plugins: []string{"bridge", "ptp"},
			want:    Network{Name: "a", Source: "10-a.conflist", Plugins: []string{"ptp"}},
		},
		{
			name:    "single-plugin .conf",
			files:   map[string]string{"99-x.conf": `{"cniVersion":"0.4.0","name":"x","type":"bridge"}`, "README": "not a config"},
			plugins: []string{"bridge"},
			want:    Network{Name: "x", Source: "99-x.conf", Plugins: []string{"bridge"}},
		},
		{
			name:    "missing plugin",
			files:   map[string]string{"10-a.conflist": `{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"bridge"},{"type":"nosuchplugin"}]}`},
			plugins: []string{"bridge"},
			reason:  "NetworkPluginNotReady",
		},
		{
			name:    "missing portmap for the built-in network",
			plugins: []string{"bridge", "host-local"},
			reason:  "NetworkPluginNotReady",
		},
		{
			name:    "unparseable file",
			files:   map[string]string{"10-a.conflist": `{"cniVersion":`},
			plugins: []string{"bridge"},
			reason:  "NetworkPluginNotReady",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			confDir, binDir := t.TempDir(), t.TempDir()
			for name, body := range tc.files {
				writeConf(t, confDir, name, body)
			}
			for _, p := range tc.plugins {
				fakePlugin(t, binDir, p)
			}
			got, err := newManager(t, confDir, binDir).Network(context.Background())
			if tc.reason != "" {
				var nr *errdefs.NotReadyError
				if !errors.As(err, &nr) || nr.Reason != tc.reason {
					t.Fatalf("Network() = %+v, %v; want NotReady %s", got, err, tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want.Source != BuiltinSource {
				tc.want.Source = filepath.Join(confDir, tc.want.Source)
			}
			got.list, got.withoutPortmap = nil, nil
			if !reflect.DeepEqual(*got, tc.want) {
				t.Fatalf("Network() = %+v; want %+v", *got, tc.want)
			}
		})
	}
}

func TestNetworkFollowsTheConfDir(t *testing.T) {
	confDir, binDir := t.TempDir(), t.TempDir()
	for _, p := range []string{"bridge", "host-local", "portmap"} {
		fakePlugin(t, binDir, p)
	}
	m := newManager(t, confDir, binDir)
	ctx := context.Background()
	if n, err := m.Network(ctx); err != nil || n.Source != BuiltinSource {
		t.Fatalf("empty dir: %+v, %v", n, err)
	}

	// A config that names a plugin not installed yet: not ready, and ready
	// as soon as the plugin appears, with no change to the config.
	writeConf(t, confDir, "50-new.conflist", `{"cniVersion":"1.0.0","name":"new","plugins":[{"type":"macvlan"}]}`)
	if _, err := m.Network(ctx); err == nil {
		t.Fatal("config naming a missing plugin is ready")
	}
	fakePlugin(t, binDir, "macvlan")
	if n, err := m.Network(ctx); err != nil || n.Name != "new" {
		t.Fatalf("after installing the plugin: %+v, %v", n, err)
	}

	// Removing the config falls back to the built-in network.
	if err := os.Remove(filepath.Join(confDir, "50-new.conflist")); err != nil {
		t.Fatal(err)
	}
	if n, err := m.Network(ctx); err != nil || n.Source != BuiltinSource {
		t.Fatalf("after removal: %+v, %v", n, err)
	}
}
