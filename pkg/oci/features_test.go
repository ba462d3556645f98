package oci

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestProbeFeatures(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	kernel := kernelHasMountSetattr()
	idmapped := canIDMap(dir) == nil
	if os.Geteuid() == 0 && !idmapped {
		t.Logf("this kernel cannot idmap mounts of %s: %v", dir, canIDMap(dir))
	}
	const userns = `,"linux":{"namespaces":["user","net"],"mountExtensions":{"idmap":{"enabled":true}}}`
	for _, tc := range []struct {
		name, body  string
		rro, userns bool
	}{
		{"with-rro", `echo '{"ociVersionMin":"1.0.0","mountOptions":["ro","rro","rbind"]}'`, kernel, false},
		{"without-rro", `echo '{"mountOptions":["ro","rbind"]}'`, false, false},
		{"idmap", `echo '{"mountOptions":["ro"]` + userns + `}'`, false, idmapped},
		{"no-idmap", `echo '{"linux":{"namespaces":["user"]}}'`, false, false},
		{"no-features-command", `echo "unknown command" >&2; exit 1`, false, false},
		{"garbage", `echo not json`, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ProbeFeatures(context.Background(), script(tc.name, tc.body), dir)
			if got.RecursiveReadOnlyMounts != tc.rro || got.UserNamespaces != tc.userns {
				t.Errorf("features = %+v; want rro %v, user namespaces %v", got, tc.rro, tc.userns)
			}
		})
	}
	if got := ProbeFeatures(context.Background(), filepath.Join(dir, "missing"), dir); got != (Features{}) {
		t.Errorf("missing runtime: %+v; want no features", got)
	}
}
