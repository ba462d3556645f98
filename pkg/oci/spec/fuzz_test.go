package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// fuzzSeeds are the Inputs FuzzBuild starts from: an ordinary pod
// container, a privileged one, one on the host's namespaces, and one made of
// the odd values a hostile or broken client could send. Paths the fuzz body
// replaces (rootfs, localhost profile) are left as placeholders.
var fuzzSeeds = []Input{
	{
		ID: "c1", Hostname: "pod-a", Rootfs: "/rootfs",
		Image:   ImageConfig{Entrypoint: []string{"/bin/app"}, Cmd: []string{"--serve"}, Env: []string{"PATH=/bin", "LANG=C"}, WorkingDir: "srv", User: "alice:staff", StopSignal: "SIGQUIT"},
		Command: []string{"/bin/sh", "-c"}, Args: []string{"sleep 1"}, Env: []string{"A=1", "B="}, WorkingDir: "/work", TTY: true,
		Network: Namespace{Mode: Pod, Path: "/run/ns/net"}, IPC: Namespace{Mode: Pod, Path: "/run/ns/ipc"},
		UTS: Namespace{Mode: Pod, Path: "/run/ns/uts"}, PID: Namespace{Mode: Container},
		Mounts: []Mount{
			{ContainerPath: "/data", HostPath: "/", Readonly: true, RecursiveReadOnly: true},
			{ContainerPath: "/data/logs", HostPath: "/tmp", Propagation: RSlave, Options: []string{"nosuid"}},
			{ContainerPath: "/etc/hosts", HostPath: "/etc"},
		},
		Devices:   []Device{{ContainerPath: "/dev/mynull", HostPath: "/dev/null", Permissions: "rw"}},
		HostsPath: "/pod/hosts", HostnamePath: "/pod/hostname", ResolvConfPath: "/pod/resolv.conf", ShmPath: "/pod/shm",
		Security: Security{
			NoNewPrivs: true, ReadonlyRootfs: true, SupplementalGroups: []int64{29, 44},
			CapAdd: []string{"net_admin", "CAP_SYS_TIME"}, CapDrop: []string{"MKNOD"},
			DefaultMaskedPaths: true, DefaultReadonlyPaths: true,
			Seccomp: Profile{Type: RuntimeDefault}, AppArmor: Profile{Type: RuntimeDefault},
		},
		Resources: Resources{
			CPUPeriod: 100000, CPUQuota: 50000, CPUShares: 512, MemoryLimit: 1 << 28, PidsLimit: 100,
			CpusetCpus: "0-1", CpusetMems: "0", OOMScoreAdj: 1000,
			Hugepages: []Hugepage{{PageSize: "2MB", Limit: 1 << 21}}, Unified: map[string]string{"memory.high": "max"},
		},
		CgroupsPath: "/kubepods/pod1/c1", Sysctls: map[string]string{"net.ipv4.ip_forward": "1"},
		Annotations: map[string]string{"io.kubernetes.pod.name": "a"}, OOMScoreAdjMin: -999,
	},
	{
		ID: "priv", Rootfs: "/rootfs", Command: []string{"/bin/true"},
		Network: Namespace{Mode: Pod, Path: "/run/ns/net"}, IPC: Namespace{Mode: Pod, Path: "/run/ns/ipc"},
		UTS: Namespace{Mode: Pod, Path: "/run/ns/uts"}, PID: Namespace{Mode: Pod, Path: "/proc/1/ns/pid"},
		Devices: []Device{{ContainerPath: "/dev/fakedisk", HostPath: "/dev/null"}},
		Security: Security{
			Privileged: true, RunAsUser: ptr(int64(1000)), RunAsGroup: ptr(int64(10)),
			CapAdd: []string{"ALL"}, Seccomp: Profile{Type: Localhost, LocalhostPath: "/profile.json"},
			AppArmor: Profile{Type: Localhost, LocalhostPath: "my-profile"},
		},
	},
	{
		ID: "host", Rootfs: "/rootfs", Image: ImageConfig{Cmd: []string{"top"}, User: "1001"},
		Network: Namespace{Mode: Node}, IPC: Namespace{Mode: Node}, UTS: Namespace{Mode: Node},
		PID: Namespace{Mode: Target, Path: "/proc/42/ns/pid"},
		Security: Security{
			RunAsUsername: "bob", SupplementalGroupsStrict: true, CapDrop: []string{"ALL"}, CapAdd: []string{"NET_BIND_SERVICE"},
			MaskedPaths: []string{"/proc/kcore"}, ReadonlyPaths: []string{"/proc/sys"}, Seccomp: Profile{Type: Unconfined},
		},
		Resources: Resources{MemoryLimit: 1 << 30, MemorySwapLimit: -1},
	},
	{
		ID: "hostile", Rootfs: "/rootfs", Hostname: "\x00",
		Image:   ImageConfig{Entrypoint: []string{""}, Env: []string{"=junk", "", "PATH"}, WorkingDir: "../../..", User: "99999999999999:nogroup"},
		Env:     []string{"X=1", "=bad"},
		Network: Namespace{Mode: 99}, IPC: Namespace{Mode: Target}, UTS: Namespace{Mode: -1}, PID: Namespace{Mode: Pod},
		Mounts: []Mount{
			{ContainerPath: "../escape", HostPath: "/"},
			{ContainerPath: "relative", HostPath: "/"},
			{ContainerPath: "", HostPath: ""},
			{ContainerPath: "/", HostPath: "/", Propagation: 7},
			{ContainerPath: "/a/", HostPath: "/"}, {ContainerPath: "/a", HostPath: "/"},
			{ContainerPath: "/x/../../etc", HostPath: "/nonexistent", RecursiveReadOnly: true},
		},
		Devices: []Device{{ContainerPath: "dev", HostPath: "/etc/passwd", Permissions: "rrx"}},
		Security: Security{
			RunAsUser: ptr(int64(-1)), RunAsGroup: ptr(int64(math.MaxInt64)), RunAsUsername: "a:b",
			SupplementalGroups: []int64{-5, math.MaxUint32},
			CapAdd:             []string{"cap_nonexistent", "", " all "}, CapDrop: []string{"CAP_"},
			MaskedPaths: []string{"proc/kcore", ""}, Seccomp: Profile{Type: 5, LocalhostPath: "relative.json"}, AppArmor: Profile{Type: Localhost},
		},
		Resources: Resources{
			CPUPeriod: -1, CPUQuota: math.MinInt64, CPUShares: math.MaxInt64, MemoryLimit: math.MaxInt64, MemorySwapLimit: -2,
			PidsLimit: math.MinInt64, OOMScoreAdj: math.MinInt, Hugepages: []Hugepage{{PageSize: "", Limit: math.MaxUint64}},
			Unified: map[string]string{"": ""},
		},
		OOMScoreAdjMin: math.MaxInt,
	},
}

// FuzzBuild checks that Build, and the other entry points that read the
// request (StopSignal, LinuxResources), return an error rather than panic
// whatever Input they get. The Input is JSON, so the fuzzer can reach every
// field; the rootfs' /etc/passwd and /etc/group and a Localhost seccomp
// profile are further arguments, since Build reads them from files. So are
// the strings most worth mutating, which a mutated JSON document would
// mostly lose: the image USER, one more mount's container path, one more
// capability and the stop signal. flags picks the shape of /etc (bits 0-1),
// fakes an AppArmor host (bit 2) and drops the capability instead of adding
// it (bit 3).
func FuzzBuild(f *testing.F) {
	seccompProfile := []byte(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}`)
	for i := range fuzzSeeds {
		var flags uint8
		switch i {
		case 0:
			flags = 4 // on an AppArmor host
		case 1:
			flags = 1 // /etc/passwd and /etc/group are symlinks
		}
		f.Add(fuzzSeedJSON(f, i), testPasswd, testGroup, seccompProfile, flags, "", "", "", "")
	}
	f.Add([]byte(`{"Rootfs":"relative"}`), "", "", []byte(nil), uint8(0), "", "", "", "")
	f.Add([]byte(`{"Image":{"Cmd":["x"]},"PID":{"Mode":1},"Network":{"Mode":2},"IPC":{"Mode":2},"UTS":{"Mode":2},"Security":{"Seccomp":{"Type":2,"LocalhostPath":"/p"}}}`), "root::0:0", "::x:", []byte(`{"defaultAction":""}`), uint8(3), "0:0", "/proc", "sys_admin", "9")
	f.Add([]byte(`{"Image":{"Cmd":["x"],"User":"nobody"},"PID":{"Mode":2},"Network":{"Mode":2},"IPC":{"Mode":2},"UTS":{"Mode":2}}`), "", "", []byte(nil), uint8(2), "", "", "", "")
	f.Add(fuzzSeedJSON(f, 0), testPasswd, testGroup, seccompProfile, uint8(8), "bob:audio", "/data/../etc//x/", "CAP_SYS_ADMIN", "SIGRTMIN+3")
	f.Add(fuzzSeedJSON(f, 2), testPasswd, testGroup, seccompProfile, uint8(0), "4294967295:-1", "../../host", "all", "rtmax-40")

	files := newFuzzFiles(f)
	f.Fuzz(func(t *testing.T, data []byte, passwd, group string, profile []byte, flags uint8, user, path, capability, signal string) {
		var in Input
		if err := json.Unmarshal(data, &in); err != nil {
			return
		}
		// Keep the fuzzer inside its own directory: any absolute rootfs
		// becomes ours (a relative one stays, to be refused), and an
		// absolute Localhost profile is the fuzzed one, so that Build never
		// reads a host file such as /dev/zero.
		if in.Rootfs == "" || filepath.IsAbs(in.Rootfs) {
			in.Rootfs = files.rootfs(t, flags&3, passwd, group)
		}
		if p := &in.Security.Seccomp; p.Type == Localhost && filepath.IsAbs(p.LocalhostPath) {
			p.LocalhostPath = files.write(t, "profile.json", profile)
		}
		if user != "" {
			in.Image.User = user
		}
		if path != "" {
			in.Mounts = append(in.Mounts, Mount{ContainerPath: path, HostPath: files.dir})
		}
		if capability != "" && flags&8 == 0 {
			in.Security.CapAdd = append(in.Security.CapAdd, capability)
		} else if capability != "" {
			in.Security.CapDrop = append(in.Security.CapDrop, capability)
		}
		if flags&4 != 0 {
			in.AppArmor = loadedProfiles{DefaultAppArmorProfile, "fuzz-profile"}
		}

		// The canonical name StopSignal returns is what the monitor hands
		// to the runtime: it must read back as itself.
		if name, err := StopSignal(signal, in.Image.StopSignal); err == nil {
			if again, err := StopSignal(name, ""); err != nil || again != name {
				t.Fatalf("StopSignal(%q) = %q, which reads back as %q, %v", signal, name, again, err)
			}
		}
		if r, err := LinuxResources(in.Resources, in.Controllers); err == nil && r == nil {
			t.Fatal("LinuxResources returned neither resources nor an error")
		}
		s, err := Build(in)
		if err != nil {
			return
		}
		// What a runtime relies on in every spec Build accepts.
		switch {
		case s == nil || s.Process == nil || s.Root == nil || s.Linux == nil:
			t.Fatalf("Build returned an incomplete spec and no error: %+v", s)
		case len(s.Process.Args) == 0:
			t.Fatal("Build returned a spec without a command")
		case !filepath.IsAbs(s.Process.Cwd):
			t.Fatalf("process.cwd %q is not absolute", s.Process.Cwd)
		case s.Root.Path != in.Rootfs:
			t.Fatalf("root.path = %q; want %q", s.Root.Path, in.Rootfs)
		}
		for _, m := range s.Mounts {
			if !filepath.IsAbs(m.Destination) {
				t.Fatalf("mount destination %q is not absolute", m.Destination)
			}
		}
		if _, err := json.Marshal(s); err != nil {
			t.Fatalf("the spec does not encode: %v", err)
		}
	})
}

// fuzzSeedJSON encodes a seed without its zero fields: Input has no JSON
// tags, and short inputs are quicker for the fuzzer to mutate and minimize.
func fuzzSeedJSON(f *testing.F, i int) []byte {
	data, err := json.Marshal(fuzzSeeds[i])
	if err != nil {
		f.Fatal(err)
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keeps math.MaxInt64 exact
	if err := dec.Decode(&v); err != nil {
		f.Fatal(err)
	}
	if data, err = json.Marshal(dropZero(v)); err != nil {
		f.Fatal(err)
	}
	return data
}

// dropZero removes the zero values from decoded JSON objects.
func dropZero(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		if l, ok := v.([]any); ok {
			for i := range l {
				l[i] = dropZero(l[i])
			}
		}
		return v
	}
	for k, e := range m {
		m[k] = dropZero(e)
		switch e := m[k].(type) {
		case nil:
			delete(m, k)
		case bool:
			if !e {
				delete(m, k)
			}
		case string:
			if e == "" {
				delete(m, k)
			}
		case json.Number:
			if e == "0" {
				delete(m, k)
			}
		case map[string]any:
			if len(e) == 0 {
				delete(m, k)
			}
		}
	}
	return m
}

// fuzzFiles are the files FuzzBuild points Build at, made once per fuzzing
// process (its runs are sequential) because creating directories costs more
// than Build itself. There are four rootfs shapes, by what /etc holds: 0
// regular passwd and group files, rewritten when a run's differ; 1 symlinks to
// files outside the rootfs, which Build must not follow out of it; 2
// directories in place of the files; 3 nothing.
type fuzzFiles struct {
	dir     string
	rootfss [4]string
	// written is the passwd and group content of shape 0 on disk.
	written [2]string
}

func newFuzzFiles(f *testing.F) *fuzzFiles {
	ff := &fuzzFiles{dir: f.TempDir()}
	outside := filepath.Join(ff.dir, "outside")
	for shape := range ff.rootfss {
		ff.rootfss[shape] = filepath.Join(ff.dir, fmt.Sprintf("rootfs%d", shape))
		etc := filepath.Join(ff.rootfss[shape], "etc")
		must(f, os.MkdirAll(etc, 0o755))
		for _, name := range []string{"passwd", "group"} {
			switch shape {
			case 1:
				must(f, os.MkdirAll(outside, 0o755))
				must(f, os.WriteFile(filepath.Join(outside, name), []byte("evil:x:0:0::/:/bin/sh\n"), 0o644))
			case 2:
				must(f, os.Mkdir(filepath.Join(etc, name), 0o755))
			}
		}
		if shape == 1 {
			must(f, os.Symlink("../../outside/passwd", filepath.Join(etc, "passwd")))
			must(f, os.Symlink(filepath.Join(outside, "group"), filepath.Join(etc, "group")))
		}
	}
	return ff
}

// rootfs returns the rootfs of this shape, with passwd and group written
// when the shape has the files.
func (ff *fuzzFiles) rootfs(t *testing.T, shape uint8, passwd, group string) string {
	root := ff.rootfss[shape]
	if shape == 0 && ff.written != [2]string{passwd, group} {
		ff.written = [2]string{}
		must(t, os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte(passwd), 0o644))
		must(t, os.WriteFile(filepath.Join(root, "etc", "group"), []byte(group), 0o644))
		ff.written = [2]string{passwd, group}
	}
	return root
}

// write writes a file in the fuzzing directory and returns its path.
func (ff *fuzzFiles) write(t *testing.T, name string, data []byte) string {
	path := filepath.Join(ff.dir, name)
	must(t, os.WriteFile(path, data, 0o644))
	return path
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
