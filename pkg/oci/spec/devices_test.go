package spec

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestDevices(t *testing.T) {
	denyAll := specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}

	for _, tc := range []struct {
		name, perms, wantAccess string
	}{
		{"explicit permissions", "rw", "rw"},
		{"kubelet order", "mrw", "mrw"},
		{"default permissions", "", "rwm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.Devices = []Device{{ContainerPath: "/dev/mynull", HostPath: "/dev/null", Permissions: tc.perms}}
			s := mustBuild(t, in)
			if len(s.Linux.Devices) != 1 {
				t.Fatalf("devices = %+v", s.Linux.Devices)
			}
			d := s.Linux.Devices[0]
			if d.Path != "/dev/mynull" || d.Type != "c" || d.Major != 1 || d.Minor != 3 || d.FileMode == nil {
				t.Errorf("device = %+v, want /dev/mynull c 1:3", d)
			}
			rules := s.Linux.Resources.Devices
			if len(rules) != 2 || rules[0].Allow != denyAll.Allow || rules[0].Access != denyAll.Access || rules[0].Type != "" {
				t.Fatalf("cgroup rules = %+v, want deny-all then one allow", rules)
			}
			r := rules[1]
			if !r.Allow || r.Type != "c" || r.Major == nil || *r.Major != 1 || r.Minor == nil || *r.Minor != 3 || r.Access != tc.wantAccess {
				t.Errorf("allow rule = %+v, want c 1:3 %s", r, tc.wantAccess)
			}
		})
	}

	notDevice := filepath.Join(t.TempDir(), "file")
	writeFile(t, notDevice, "")
	for _, tc := range []struct {
		name   string
		dev    Device
		errHas string
	}{
		{"missing host device", Device{ContainerPath: "/dev/x", HostPath: "/dev/does-not-exist"}, "/dev/does-not-exist"},
		{"not a device", Device{ContainerPath: "/dev/x", HostPath: notDevice}, "not a device"},
		{"bad permission letter", Device{ContainerPath: "/dev/x", HostPath: "/dev/null", Permissions: "rwx"}, "rwx"},
		{"repeated permission", Device{ContainerPath: "/dev/x", HostPath: "/dev/null", Permissions: "rr"}, "rr"},
		{"relative container path", Device{ContainerPath: "dev/x", HostPath: "/dev/null"}, "relative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.Devices = []Device{tc.dev}
			_, err := Build(in)
			wantInvalid(t, err)
			if !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("error %q does not mention %q", err, tc.errHas)
			}
		})
	}

	t.Run("privileged gets host devices and allows all", func(t *testing.T) {
		in := baseInput(t)
		in.Security.Privileged = true
		in.Devices = []Device{{ContainerPath: "/dev/mynull", HostPath: "/dev/null", Permissions: "r"}}
		s := mustBuild(t, in)
		var paths []string
		for _, d := range s.Linux.Devices {
			paths = append(paths, d.Path)
		}
		if strings.Join(paths, ",") != "/dev/fakedisk,/dev/mynull" {
			t.Errorf("devices = %q, want the host's then the requested", paths)
		}
		rules := s.Linux.Resources.Devices
		if len(rules) != 2 || !rules[1].Allow || rules[1].Type != "a" || rules[1].Access != "rwm" || rules[1].Major != nil {
			t.Errorf("cgroup rules = %+v, want deny-all then allow a rwm", rules)
		}
	})
}

// walkDevices is what ProbeHost lists devices with; check it on the real /dev.
func TestWalkDevices(t *testing.T) {
	devs, err := walkDevices("/dev")
	if err != nil {
		t.Fatal(err)
	}
	var sawNull bool
	for _, d := range devs {
		if d.Path == "/dev/null" && d.Type == "c" && d.Major == 1 && d.Minor == 3 {
			sawNull = true
		}
		if strings.HasPrefix(d.Path, "/dev/pts/") || d.Path == "/dev/console" {
			t.Errorf("listed %s", d.Path)
		}
	}
	if !sawNull {
		t.Error("/dev/null not listed")
	}
}

// A privileged container gets the devices its Host lists, when it is built:
// none for a Host that lists none, and a listing error fails the build.
func TestPrivilegedDevicesComeFromTheHost(t *testing.T) {
	in := baseInput(t)
	in.Security.Privileged = true
	in.Host.Devices = nil
	if s := mustBuild(t, in); len(s.Linux.Devices) != 0 {
		t.Errorf("devices on a host listing none: %+v", s.Linux.Devices)
	}
	in.Host.Devices = func() ([]specs.LinuxDevice, error) { return nil, errors.New("no /dev") }
	if _, err := Build(in); err == nil || !strings.Contains(err.Error(), "no /dev") {
		t.Errorf("Build with a failing device listing = %v; want its error", err)
	}
}
