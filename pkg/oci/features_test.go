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
	for _, tc := range []struct {
		name, body string
		rro        bool
	}{
		{"with-rro", `echo '{"ociVersionMin":"1.0.0","mountOptions":["ro","rro","rbind"]}'`, kernel},
		{"without-rro", `echo '{"mountOptions":["ro","rbind"]}'`, false},
		{"no-features-command", `echo "unknown command" >&2; exit 1`, false},
		{"garbage", `echo not json`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ProbeFeatures(context.Background(), script(tc.name, tc.body))
			if got.RecursiveReadOnlyMounts != tc.rro {
				t.Errorf("RecursiveReadOnlyMounts = %v; want %v", got.RecursiveReadOnlyMounts, tc.rro)
			}
		})
	}
	if got := ProbeFeatures(context.Background(), filepath.Join(dir, "missing")); got != (Features{}) {
		t.Errorf("missing runtime: %+v; want no features", got)
	}
}
