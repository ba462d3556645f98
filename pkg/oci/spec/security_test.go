package spec

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate/seccomp"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func TestCapabilities(t *testing.T) {
	all := knownCapabilities()
	without := func(list []string, drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(list), func(c string) bool { return slices.Contains(drop, c) })
	}
	for _, tc := range []struct {
		name       string
		privileged bool
		add, drop  []string
		want       []string
		wantErr    string
	}{
		{name: "default set", want: defaultCapabilities},
		{name: "add with and without prefix, any case", add: []string{"net_admin", "CAP_SYS_TIME", "Chown"},
			want: append(slices.Clone(defaultCapabilities), "CAP_NET_ADMIN", "CAP_SYS_TIME")},
		{name: "drop", drop: []string{"CHOWN", "cap_kill"}, want: without(defaultCapabilities, "CAP_CHOWN", "CAP_KILL")},
		{name: "drop ALL then add", drop: []string{"ALL"}, add: []string{"NET_BIND_SERVICE"}, want: []string{"CAP_NET_BIND_SERVICE"}},
		{name: "drop all lowercase", drop: []string{"all"}, want: nil},
		{name: "add ALL", add: []string{"ALL"}, want: all},
		{name: "add ALL drop one", add: []string{"ALL"}, drop: []string{"CHOWN"}, want: without(all, "CAP_CHOWN")},
		{name: "add ALL drop ALL", add: []string{"ALL"}, drop: []string{"ALL"}, want: nil},
		{name: "privileged has all", privileged: true, drop: []string{"CHOWN"}, want: all},
		{name: "unknown add", add: []string{"FLY"}, wantErr: "FLY"},
		{name: "unknown drop", drop: []string{"CAP_TELEPORT"}, wantErr: "CAP_TELEPORT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.Security.Privileged = tc.privileged
			in.Security.CapAdd, in.Security.CapDrop = tc.add, tc.drop
			s, err := Build(in)
			if tc.wantErr != "" {
				wantInvalid(t, err)
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %q does not name %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := s.Process.Capabilities
			for set, got := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted} {
				if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
					t.Errorf("%s = %q, want %q", set, got, tc.want)
				}
			}
			if len(c.Inheritable) != 0 || len(c.Ambient) != 0 {
				t.Errorf("inheritable %q ambient %q, want empty", c.Inheritable, c.Ambient)
			}
		})
	}
	if !slices.Contains(all, "CAP_SYS_ADMIN") || !slices.Contains(all, "CAP_BPF") {
		t.Errorf("known capabilities look short: %q", all)
	}
}

func TestMaskedAndReadonlyPaths(t *testing.T) {
	for _, tc := range []struct {
		name               string
		sec                Security
		wantMasked, wantRO []string
		wantErr            bool
	}{
		{name: "defaults", sec: Security{DefaultMaskedPaths: true, DefaultReadonlyPaths: true},
			wantMasked: defaultMaskedPaths, wantRO: defaultReadonlyPaths},
		{name: "explicit", sec: Security{MaskedPaths: []string{"/proc/x"}, ReadonlyPaths: []string{"/proc/y", "/proc/z"}},
			wantMasked: []string{"/proc/x"}, wantRO: []string{"/proc/y", "/proc/z"}},
		{name: "explicitly empty", sec: Security{}},
		{name: "default masked, no read-only", sec: Security{DefaultMaskedPaths: true}, wantMasked: defaultMaskedPaths},
		{name: "privileged has none", sec: Security{Privileged: true, DefaultMaskedPaths: true, DefaultReadonlyPaths: true}},
		{name: "relative path", sec: Security{MaskedPaths: []string{"proc/x"}}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.Security = tc.sec
			s, err := Build(in)
			if tc.wantErr {
				wantInvalid(t, err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(s.Linux.MaskedPaths, tc.wantMasked) {
				t.Errorf("masked = %q, want %q", s.Linux.MaskedPaths, tc.wantMasked)
			}
			if !slices.Equal(s.Linux.ReadonlyPaths, tc.wantRO) {
				t.Errorf("readonly = %q, want %q", s.Linux.ReadonlyPaths, tc.wantRO)
			}
		})
	}
	if !slices.Contains(defaultMaskedPaths, "/sys/devices/virtual/powercap") || len(defaultMaskedPaths) != 11 || len(defaultReadonlyPaths) != 5 {
		t.Errorf("defaults changed: %q %q", defaultMaskedPaths, defaultReadonlyPaths)
	}
}

func TestSeccomp(t *testing.T) {
	dir := t.TempDir()
	local := specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"read", "write", "exit"}, Action: specs.ActAllow}},
	}
	data, err := json.Marshal(local)
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.json")
	writeFile(t, good, string(data))
	broken := filepath.Join(dir, "broken.json")
	writeFile(t, broken, "{not json")
	noDefault := filepath.Join(dir, "nodefault.json")
	writeFile(t, noDefault, `{"syscalls": []}`)

	for _, tc := range []struct {
		name       string
		privileged bool
		capAdd     []string
		profile    Profile
		want       string // "default", "none", "local"
		wantErr    string
	}{
		{name: "runtime default", profile: Profile{Type: RuntimeDefault}, want: "default"},
		{name: "runtime default follows capabilities", capAdd: []string{"SYS_ADMIN"}, profile: Profile{Type: RuntimeDefault}, want: "default"},
		{name: "unconfined", profile: Profile{Type: Unconfined}, want: "none"},
		{name: "localhost", profile: Profile{Type: Localhost, LocalhostPath: good}, want: "local"},
		{name: "privileged is unconfined", privileged: true, profile: Profile{Type: RuntimeDefault}, want: "none"},
		{name: "privileged ignores localhost", privileged: true, profile: Profile{Type: Localhost, LocalhostPath: good}, want: "none"},
		{name: "missing file", profile: Profile{Type: Localhost, LocalhostPath: filepath.Join(dir, "nope.json")}, wantErr: "nope.json"},
		{name: "invalid json", profile: Profile{Type: Localhost, LocalhostPath: broken}, wantErr: "parse"},
		{name: "no default action", profile: Profile{Type: Localhost, LocalhostPath: noDefault}, wantErr: "defaultAction"},
		{name: "relative path", profile: Profile{Type: Localhost, LocalhostPath: "good.json"}, wantErr: "not absolute"},
		{name: "unknown type", profile: Profile{Type: 5}, wantErr: "unknown profile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.Security.Privileged = tc.privileged
			in.Security.CapAdd = tc.capAdd
			in.Security.Seccomp = tc.profile
			s, err := Build(in)
			if tc.wantErr != "" {
				wantInvalid(t, err)
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %q does not mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch tc.want {
			case "none":
				if s.Linux.Seccomp != nil {
					t.Error("seccomp set")
				}
			case "local":
				if !reflect.DeepEqual(*s.Linux.Seccomp, local) {
					t.Errorf("seccomp = %+v, want %+v", s.Linux.Seccomp, local)
				}
			case "default":
				// The default profile depends on the final capabilities:
				// recomputing it from the output spec must give the same.
				if s.Linux.Seccomp == nil || !reflect.DeepEqual(s.Linux.Seccomp, defaultSeccompProfile(s)) {
					t.Error("seccomp is not runtime-tools' default profile for this spec")
				}
				if again := mustBuild(t, in); !reflect.DeepEqual(again.Linux.Seccomp, s.Linux.Seccomp) {
					t.Error("two builds give different seccomp rules")
				}
				if len(s.Linux.Seccomp.Syscalls) != len(seccomp.DefaultProfile(s).Syscalls) {
					t.Error("sorting lost rules")
				}
				if s.Linux.Seccomp.DefaultAction != specs.ActErrno {
					t.Errorf("default action %q", s.Linux.Seccomp.DefaultAction)
				}
				allowsMount := false
				for _, sc := range s.Linux.Seccomp.Syscalls {
					if slices.Contains(sc.Names, "mount") && sc.Action == specs.ActAllow {
						allowsMount = true
					}
				}
				if wantMount := slices.Contains(tc.capAdd, "SYS_ADMIN"); allowsMount != wantMount {
					t.Errorf("mount allowed = %v, want %v", allowsMount, wantMount)
				}
			}
		})
	}
}

func TestAppArmor(t *testing.T) {
	withDefault := loadedProfiles{DefaultAppArmorProfile, "my-prof"}
	for _, tc := range []struct {
		name       string
		host       AppArmorHost // nil: no AppArmor on the node
		privileged bool
		profile    Profile
		want       string
		wantErr    error
	}{
		{name: "no apparmor on host: default", profile: Profile{Type: RuntimeDefault}},
		{name: "no apparmor on host: unconfined", profile: Profile{Type: Unconfined}},
		{name: "no apparmor on host: localhost is refused", profile: Profile{Type: Localhost, LocalhostPath: "my-prof"},
			wantErr: errdefs.ErrFailedPrecondition},
		{name: "runtime default", host: withDefault, profile: Profile{Type: RuntimeDefault}, want: DefaultAppArmorProfile},
		{name: "runtime default not loaded", host: loadedProfiles{"my-prof"}, profile: Profile{Type: RuntimeDefault},
			wantErr: errdefs.ErrFailedPrecondition},
		{name: "localhost", host: withDefault, profile: Profile{Type: Localhost, LocalhostPath: "my-prof"}, want: "my-prof"},
		{name: "localhost not loaded", host: withDefault, profile: Profile{Type: Localhost, LocalhostPath: "other"},
			wantErr: errdefs.ErrFailedPrecondition},
		{name: "unconfined", host: withDefault, profile: Profile{Type: Unconfined}},
		{name: "privileged default is unconfined", host: loadedProfiles{}, privileged: true, profile: Profile{Type: RuntimeDefault}},
		{name: "privileged keeps localhost", host: loadedProfiles{"p"}, privileged: true, profile: Profile{Type: Localhost, LocalhostPath: "p"}, want: "p"},
		{name: "localhost without name", host: withDefault, profile: Profile{Type: Localhost}, wantErr: errdefs.ErrInvalidArgument},
		{name: "unknown type", profile: Profile{Type: 9}, wantErr: errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.AppArmor = tc.host
			in.Security.Privileged = tc.privileged
			in.Security.AppArmor = tc.profile
			s, err := Build(in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Process.ApparmorProfile != tc.want {
				t.Errorf("apparmor = %q, want %q", s.Process.ApparmorProfile, tc.want)
			}
		})
	}
}
