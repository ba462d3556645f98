package spec

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDefaultMounts(t *testing.T) {
	in := baseInput(t)
	s := mustBuild(t, in)
	want := []string{
		"/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/sys/fs/cgroup",
		"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/dev/shm",
	}
	if got := destinations(s); !slices.Equal(got, want) {
		t.Fatalf("mounts = %q, want %q", got, want)
	}
	for _, tc := range []struct {
		dest, typ, src string
		opts           []string
	}{
		{"/sys", "sysfs", "sysfs", []string{"nosuid", "noexec", "nodev", "ro"}},
		{"/sys/fs/cgroup", "cgroup", "cgroup", []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		{"/etc/hosts", "bind", in.HostsPath, []string{"rbind", "rprivate", "rw"}},
		{"/etc/hostname", "bind", in.HostnamePath, []string{"rbind", "rprivate", "rw"}},
		{"/etc/resolv.conf", "bind", in.ResolvConfPath, []string{"rbind", "rprivate", "rw"}},
		{"/dev/shm", "bind", in.ShmPath, []string{"rbind", "rprivate", "rw", "nosuid", "nodev", "noexec"}},
	} {
		t.Run(tc.dest, func(t *testing.T) {
			m, _ := findMount(s, tc.dest)
			if m.Type != tc.typ || m.Source != tc.src || !slices.Equal(m.Options, tc.opts) {
				t.Errorf("mount = %+v, want type %s source %s options %q", m, tc.typ, tc.src, tc.opts)
			}
		})
	}
	if s.Linux.RootfsPropagation != "" {
		t.Errorf("rootfsPropagation = %q without propagating mounts", s.Linux.RootfsPropagation)
	}
}

func TestPodMountVariants(t *testing.T) {
	t.Run("read-only rootfs makes pod files read-only, not shm", func(t *testing.T) {
		in := baseInput(t)
		in.Security.ReadonlyRootfs = true
		s := mustBuild(t, in)
		if !s.Root.Readonly {
			t.Error("root not read-only")
		}
		for _, dest := range []string{"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"} {
			if m, _ := findMount(s, dest); !slices.Contains(m.Options, "ro") {
				t.Errorf("%s options %q, want ro", dest, m.Options)
			}
		}
		if m, _ := findMount(s, "/dev/shm"); !slices.Contains(m.Options, "rw") {
			t.Errorf("/dev/shm options %q, want rw", m.Options)
		}
	})
	t.Run("host IPC binds host shm", func(t *testing.T) {
		in := baseInput(t)
		in.ShmPath = ""
		s := mustBuild(t, in)
		if m, _ := findMount(s, "/dev/shm"); m.Source != "/dev/shm" {
			t.Errorf("/dev/shm source = %q", m.Source)
		}
	})
	t.Run("absent pod files are not mounted", func(t *testing.T) {
		in := baseInput(t)
		in.HostsPath, in.HostnamePath, in.ResolvConfPath = "", "", ""
		s := mustBuild(t, in)
		for _, dest := range []string{"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"} {
			if _, ok := findMount(s, dest); ok {
				t.Errorf("%s mounted", dest)
			}
		}
	})
	t.Run("privileged gets writable sysfs and cgroupfs", func(t *testing.T) {
		in := baseInput(t)
		in.Security.Privileged = true
		s := mustBuild(t, in)
		for _, dest := range []string{"/sys", "/sys/fs/cgroup"} {
			if m, _ := findMount(s, dest); !slices.Contains(m.Options, "rw") || slices.Contains(m.Options, "ro") {
				t.Errorf("%s options %q, want rw", dest, m.Options)
			}
		}
	})
}

func TestRequestMounts(t *testing.T) {
	host := t.TempDir()
	data, sub, hosts := filepath.Join(host, "data"), filepath.Join(host, "sub"), filepath.Join(host, "hosts")
	for _, p := range []string{data, sub, hosts} {
		writeFile(t, p, "")
	}

	t.Run("order, replacement and options", func(t *testing.T) {
		in := baseInput(t)
		in.Mounts = []Mount{
			{ContainerPath: "/data/sub", HostPath: sub, Options: []string{"nosuid"}},
			{ContainerPath: "/etc/hosts", HostPath: hosts, Readonly: true},
			{ContainerPath: "/data/", HostPath: data, Readonly: true, RecursiveReadOnly: true},
		}
		s := mustBuild(t, in)
		want := []string{
			"/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/sys/fs/cgroup",
			"/etc/hostname", "/etc/resolv.conf", "/dev/shm",
			"/data", "/data/sub", "/etc/hosts", // by depth, stable
		}
		if got := destinations(s); !slices.Equal(got, want) {
			t.Fatalf("mounts = %q, want %q", got, want)
		}
		for _, tc := range []struct {
			dest, src string
			opts      []string
		}{
			{"/data", data, []string{"rbind", "rprivate", "ro", "rro"}},
			{"/etc/hosts", hosts, []string{"rbind", "rprivate", "ro"}},
			{"/data/sub", sub, []string{"rbind", "rprivate", "rw", "nosuid"}},
		} {
			m, _ := findMount(s, tc.dest)
			if m.Type != "bind" || m.Source != tc.src || !slices.Equal(m.Options, tc.opts) {
				t.Errorf("%s = %+v, want source %s options %q", tc.dest, m, tc.src, tc.opts)
			}
		}
	})

	t.Run("a /dev mount drops the default mounts below it", func(t *testing.T) {
		in := baseInput(t)
		in.Mounts = []Mount{{ContainerPath: "/dev", HostPath: "/dev"}}
		s := mustBuild(t, in)
		want := []string{"/proc", "/sys", "/sys/fs/cgroup", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/dev"}
		if got := destinations(s); !slices.Equal(got, want) {
			t.Fatalf("mounts = %q, want %q", got, want)
		}
	})

	for _, tc := range []struct {
		name   string
		mounts []Mount
		want   string
	}{
		{"none", []Mount{{ContainerPath: "/a", HostPath: data}}, ""},
		{"rslave", []Mount{{ContainerPath: "/a", HostPath: data, Propagation: RSlave}}, "rslave"},
		{"rshared wins over rslave", []Mount{
			{ContainerPath: "/a", HostPath: data, Propagation: RSlave},
			{ContainerPath: "/b", HostPath: sub, Propagation: RShared},
		}, "rshared"},
	} {
		t.Run("rootfs propagation "+tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.Mounts = tc.mounts
			s := mustBuild(t, in)
			if s.Linux.RootfsPropagation != tc.want {
				t.Errorf("rootfsPropagation = %q, want %q", s.Linux.RootfsPropagation, tc.want)
			}
			for i, m := range tc.mounts {
				got, _ := findMount(s, m.ContainerPath)
				opt, _ := propagationOption(m.Propagation)
				if !slices.Contains(got.Options, opt) {
					t.Errorf("mount %d options %q lack %s", i, got.Options, opt)
				}
			}
		})
	}

	for _, tc := range []struct {
		name   string
		mount  Mount
		errHas string
	}{
		{"relative container path", Mount{ContainerPath: "data", HostPath: data}, "relative"},
		{"missing host path", Mount{ContainerPath: "/x", HostPath: filepath.Join(host, "nope")}, filepath.Join(host, "nope")},
		{"empty host path", Mount{ContainerPath: "/x"}, "empty host path"},
		{"rro without readonly", Mount{ContainerPath: "/x", HostPath: data, RecursiveReadOnly: true}, "requires readonly"},
		{"rro with rslave", Mount{ContainerPath: "/x", HostPath: data, Readonly: true, RecursiveReadOnly: true, Propagation: RSlave}, "private propagation"},
		{"rro with rshared", Mount{ContainerPath: "/x", HostPath: data, Readonly: true, RecursiveReadOnly: true, Propagation: RShared}, "private propagation"},
		{"unknown propagation", Mount{ContainerPath: "/x", HostPath: data, Propagation: 7}, "propagation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.Mounts = []Mount{tc.mount}
			_, err := Build(in)
			wantInvalid(t, err)
			if !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("error %q does not mention %q", err, tc.errHas)
			}
		})
	}

	t.Run("same path twice", func(t *testing.T) {
		in := baseInput(t)
		in.Mounts = []Mount{{ContainerPath: "/x", HostPath: data}, {ContainerPath: "/x/", HostPath: sub}}
		_, err := Build(in)
		wantInvalid(t, err)
	})
}
