package oci

import (
	"slices"
	"testing"
)

// Found by make test-vm: with the systemd cgroup driver runc ran without
// --systemd-cgroup and made a cgroupfs directory literally named
// "cri_runtime.slice:crirt:<id>", outside any slice and without limits.
func TestRuncGlobalOptions(t *testing.T) {
	for _, tc := range []struct {
		systemd bool
		want    []string
	}{
		{false, []string{"--root", "/run/x/runc"}},
		{true, []string{"--root", "/run/x/runc", "--systemd-cgroup"}},
	} {
		r := &Runtime{opts: RuntimeOptions{StateDir: "/run/x", SystemdCgroup: tc.systemd}}
		if got := r.runcGlobal(); !slices.Equal(got, tc.want) {
			t.Errorf("systemd=%v: runc global options %q, want %q", tc.systemd, got, tc.want)
		}
	}
}
