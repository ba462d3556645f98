package spec

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

const testPasswd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1000:1000:Alice:/home/alice:/bin/sh
bob:x:1001:1001::/home/bob:/bin/sh
toor:x:0:0:alias:/root:/bin/sh
`

const testGroup = `root:x:0:
daemon:x:1:
wheel:x:10:alice,root
alice:x:1000:
bob:x:1001:
audio:x:29:alice
video:x:44:bob
staff:x:50:
`

var fakeHostDevices = []specs.LinuxDevice{{Path: "/dev/fakedisk", Type: "b", Major: 8, Minor: 0}}

// testHost is the node the spec tests describe: one that may grant every
// capability and has a fixed device list for privileged containers.
var testHost = Host{
	Devices:     func() ([]specs.LinuxDevice, error) { return slices.Clone(fakeHostDevices), nil },
	BoundingSet: ^uint64(0),
}

// loadedProfiles is a node with AppArmor that has these profiles loaded.
type loadedProfiles []string

var _ AppArmorHost = loadedProfiles(nil)

func (l loadedProfiles) Loaded(name string) bool { return slices.Contains(l, name) }

// newRootfs makes a rootfs with the test /etc/passwd and /etc/group.
func newRootfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "etc", "passwd"), testPasswd)
	writeFile(t, filepath.Join(root, "etc", "group"), testGroup)
	return root
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// baseInput is a valid, ordinary container in a pod with its own PID
// namespace; tests change what they look at.
func baseInput(t *testing.T) Input {
	t.Helper()
	pod := t.TempDir()
	for _, f := range []string{"hosts", "hostname", "resolv.conf"} {
		writeFile(t, filepath.Join(pod, f), "")
	}
	if err := os.Mkdir(filepath.Join(pod, "shm"), 0o755); err != nil {
		t.Fatal(err)
	}
	return Input{
		ID:             "c1",
		Hostname:       "pod-a",
		Host:           testHost,
		Rootfs:         newRootfs(t),
		Image:          ImageConfig{Entrypoint: []string{"/bin/app"}, Cmd: []string{"--serve"}},
		Network:        Namespace{Mode: Pod, Path: "/run/ns/net"},
		IPC:            Namespace{Mode: Pod, Path: "/run/ns/ipc"},
		UTS:            Namespace{Mode: Pod, Path: "/run/ns/uts"},
		PID:            Namespace{Mode: Container},
		HostsPath:      filepath.Join(pod, "hosts"),
		HostnamePath:   filepath.Join(pod, "hostname"),
		ResolvConfPath: filepath.Join(pod, "resolv.conf"),
		ShmPath:        filepath.Join(pod, "shm"),
		Security: Security{
			DefaultMaskedPaths:   true,
			DefaultReadonlyPaths: true,
		},
		OOMScoreAdjMin: -999,
	}
}

// mustBuild builds and fails the test on error.
func mustBuild(t *testing.T, in Input) *specs.Spec {
	t.Helper()
	s, err := Build(in)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return s
}

// wantInvalid checks err wraps ErrInvalidArgument.
func wantInvalid(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("want an InvalidArgument error, got nil")
	}
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("error %q does not wrap ErrInvalidArgument", err)
	}
}

func findMount(s *specs.Spec, dest string) (specs.Mount, bool) {
	for _, m := range s.Mounts {
		if m.Destination == dest {
			return m, true
		}
	}
	return specs.Mount{}, false
}

func destinations(s *specs.Spec) []string {
	var out []string
	for _, m := range s.Mounts {
		out = append(out, m.Destination)
	}
	return out
}

func ptr[T any](v T) *T { return &v }
