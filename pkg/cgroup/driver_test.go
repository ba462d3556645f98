package cgroup

import (
	"errors"
	"strings"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func TestDriverNamed(t *testing.T) {
	for name, want := range map[string]Driver{"cgroupfs": Cgroupfs, "systemd": Systemd} {
		if d, err := DriverNamed(name); err != nil || d != want || d.String() != name {
			t.Errorf("DriverNamed(%q) = %v, %v", name, d, err)
		}
	}
	if _, err := DriverNamed("cgroupv3"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("DriverNamed(cgroupv3): %v; want InvalidArgument", err)
	}
	if Cgroupfs.IsSystemd() || !Systemd.IsSystemd() || !Cgroupfs.MakesPodCgroups() || Systemd.MakesPodCgroups() {
		t.Error("the drivers' properties are mixed up")
	}
}

func TestPodCgroup(t *testing.T) {
	id := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		driver       Driver
		parent, want string
		bad          bool
	}{
		{Cgroupfs, "/kubepods/burstable/pod123", "/kubepods/burstable/pod123", false},
		{Cgroupfs, "kubepods/pod1", "/kubepods/pod1", false},
		{Cgroupfs, "", "/cri-runtime/pod-abababababab", false},
		{Cgroupfs, "/a/../../etc", "", true},
		{Systemd, "kubepods-burstable-pod123.slice", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod123.slice", false},
		{Systemd, "system.slice", "/system.slice", false},
		{Systemd, "-.slice", "/", false},
		{Systemd, "", "/cri_runtime.slice", false},
		{Systemd, "/kubepods/pod1", "", true},
		{Systemd, "a--b.slice", "", true},
	} {
		got, err := tc.driver.PodCgroup(tc.parent, id)
		if tc.bad {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("%v.PodCgroup(%q) = %q, %v; want InvalidArgument", tc.driver, tc.parent, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%v.PodCgroup(%q) = %q, %v; want %q", tc.driver, tc.parent, got, err, tc.want)
		}
	}
}

func TestContainerCgroup(t *testing.T) {
	for _, tc := range []struct {
		driver           Driver
		pod              string
		wantSpec, wantFS string
	}{
		{Cgroupfs, "/kubepods/pod1", "/kubepods/pod1/crirt-c1", "/kubepods/pod1/crirt-c1"},
		{Systemd, "/kubepods.slice/kubepods-pod1.slice", "kubepods-pod1.slice:crirt:c1", "/kubepods.slice/kubepods-pod1.slice/crirt-c1.scope"},
	} {
		spec, fs := tc.driver.ContainerCgroup(tc.pod, "c1")
		if spec != tc.wantSpec || fs != tc.wantFS {
			t.Errorf("%v.ContainerCgroup(%q) = %q, %q; want %q, %q", tc.driver, tc.pod, spec, fs, tc.wantSpec, tc.wantFS)
		}
	}
}
