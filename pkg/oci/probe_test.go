package oci

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// script writes an executable shell script standing in for a program.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProbe(t *testing.T) {
	dir := t.TempDir()
	runtime := script(t, dir, "fake-runc", `echo "fake-runc version 9.8.7"; echo "spec: 1.0"`)
	monitor := script(t, dir, "fake-conmon", `echo "conmon version 2.1.6"`)
	broken := script(t, dir, "broken", `echo "boom" >&2; exit 3`)
	silent := script(t, dir, "silent", `true`)

	for _, tc := range []struct {
		name, runtime, monitor, reason string
	}{
		{"both work", runtime, monitor, ""},
		{"runtime missing", filepath.Join(dir, "nope"), monitor, "OCIRuntimeNotReady"},
		{"runtime fails", broken, monitor, "OCIRuntimeNotReady"},
		{"runtime prints nothing", silent, monitor, "OCIRuntimeNotReady"},
		{"monitor missing", runtime, "no-such-conmon-anywhere", "MonitorNotReady"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NewProber(tc.runtime, tc.monitor).Probe(context.Background())
			if tc.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got.Runtime.Version != "9.8.7" || got.Monitor.Version != "2.1.6" || got.Runtime.Path != runtime {
					t.Fatalf("Probe() = %+v", got)
				}
				return
			}
			var nr *errdefs.NotReadyError
			if !errors.As(err, &nr) || nr.Reason != tc.reason || !errors.Is(err, errdefs.ErrUnavailable) {
				t.Fatalf("Probe() error = %v; want NotReady %s", err, tc.reason)
			}
		})
	}
}

func TestProbeNoticesAChangedBinary(t *testing.T) {
	dir := t.TempDir()
	rt := script(t, dir, "rt", `echo "rt version 1"`)
	mon := script(t, dir, "mon", `echo "mon version 1"`)
	p := NewProber(rt, mon)
	if _, err := p.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	script(t, dir, "rt", `echo "rt version 2.0.0-upgraded"`)
	got, err := p.Probe(context.Background())
	if err != nil || got.Runtime.Version != "2.0.0-upgraded" {
		t.Fatalf("after upgrade Probe() = %+v, %v; want the new version", got, err)
	}
	if err := os.Remove(rt); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Probe(context.Background()); err == nil {
		t.Fatal("Probe() after removal succeeded; want not ready")
	}
}
