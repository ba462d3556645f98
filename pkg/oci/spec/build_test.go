package spec

import (
	"encoding/json"
	"maps"
	"testing"
)

func TestBuildPassThrough(t *testing.T) {
	in := baseInput(t)
	in.CgroupsPath = "/kubepods/pod1/c1"
	in.Sysctls = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"}
	in.Annotations = map[string]string{"io.kubernetes.pod.name": "a"}
	in.Security.ReadonlyRootfs = true
	s := mustBuild(t, in)

	if s.Linux.CgroupsPath != in.CgroupsPath {
		t.Errorf("cgroupsPath = %q", s.Linux.CgroupsPath)
	}
	if !maps.Equal(s.Linux.Sysctl, in.Sysctls) {
		t.Errorf("sysctl = %v", s.Linux.Sysctl)
	}
	if !maps.Equal(s.Annotations, in.Annotations) {
		t.Errorf("annotations = %v", s.Annotations)
	}
	if !s.Root.Readonly || s.Root.Path != in.Rootfs {
		t.Errorf("root = %+v", s.Root)
	}

	// The spec holds copies: changing the input afterwards changes nothing.
	in.Sysctls["net.ipv4.ip_forward"] = "0"
	in.Annotations["x"] = "y"
	if s.Linux.Sysctl["net.ipv4.ip_forward"] != "1" || len(s.Annotations) != 1 {
		t.Error("spec aliases the input maps")
	}

	// The result is valid JSON config a runtime can read.
	if _, err := json.Marshal(s); err != nil {
		t.Fatal(err)
	}

	t.Run("empty maps stay unset", func(t *testing.T) {
		s := mustBuild(t, baseInput(t))
		if s.Linux.Sysctl != nil || s.Annotations != nil || s.Linux.CgroupsPath != "" {
			t.Errorf("sysctl %v annotations %v cgroupsPath %q", s.Linux.Sysctl, s.Annotations, s.Linux.CgroupsPath)
		}
	})
}

func TestBuildRootfs(t *testing.T) {
	for _, rootfs := range []string{"", "relative/rootfs"} {
		t.Run(rootfs, func(t *testing.T) {
			in := baseInput(t)
			in.Rootfs = rootfs
			_, err := Build(in)
			wantInvalid(t, err)
		})
	}
}

// A privileged container gets everything at once.
func TestBuildPrivileged(t *testing.T) {
	in := baseInput(t)
	in.AppArmor = loadedProfiles{DefaultAppArmorProfile}
	in.Security.Privileged = true
	s := mustBuild(t, in)
	if len(s.Process.Capabilities.Bounding) != len(knownCapabilities()) {
		t.Errorf("capabilities = %q", s.Process.Capabilities.Bounding)
	}
	if s.Linux.Seccomp != nil || s.Process.ApparmorProfile != "" {
		t.Errorf("seccomp %v apparmor %q, want unconfined", s.Linux.Seccomp != nil, s.Process.ApparmorProfile)
	}
	if s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil {
		t.Errorf("masked %q readonly %q", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if m, _ := findMount(s, "/sys"); m.Options[len(m.Options)-1] != "rw" {
		t.Errorf("/sys options %q", m.Options)
	}
	if len(s.Linux.Devices) != len(fakeHostDevices) {
		t.Errorf("devices = %+v", s.Linux.Devices)
	}
}
