package e2e

// Hostile images. Layers whose tar entries try to leave the layer ("../"
// names, absolute names, files written through a symlink, hardlinks to host
// files, device nodes), and rootfs symlinks that aim the pod's files, a
// mount's container path or the working directory at the host. The runtime
// may refuse such an image (at pull, create or start) or keep its paths
// inside the container; either way no file outside its image store may be
// created or changed. Every case plants its sentinels in a directory of its
// own under names carrying a random token, and checks them on the host.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	utilexec "k8s.io/utils/exec"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// hostileEntry is one tar entry of a hand-made layer.
type hostileEntry struct {
	hdr  tar.Header
	body string
}

func hFile(name, body string) hostileEntry {
	return hostileEntry{tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}, body}
}

func hDir(name string) hostileEntry {
	return hostileEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755}}
}

func hSymlink(name, target string) hostileEntry {
	return hostileEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

func hHardlink(name, target string) hostileEntry {
	return hostileEntry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644}}
}

func hDevice(name string, typ byte, major, minor uint32) hostileEntry {
	return hostileEntry{hdr: tar.Header{Typeflag: typ, Name: name, Mode: 0o666, Devmajor: int64(major), Devminor: int64(minor)}}
}

// upTo climbs far enough out of any extraction directory to reach / and then
// names the absolute path p, so that a naive join lands on p itself.
func upTo(p string) string {
	return strings.Repeat("../", 32) + strings.TrimPrefix(p, "/")
}

// hostileLayer packs entries, in order and unchecked, into a gzipped tar layer.
func hostileLayer(t *testing.T, entries []hostileEntry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := e.hdr
		hdr.ModTime = time.Unix(0, 0)
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatalf("tar entry %q: %v", hdr.Name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatalf("tar entry %q: %v", hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	blob := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// hostileImage is busybox with one layer on top per entry list, and its
// config changed by change when that is not nil.
func hostileImage(t *testing.T, change func(*v1.Config), layers ...[]hostileEntry) v1.Image {
	t.Helper()
	img := testImages[framework.BusyboxImage].Image
	for _, es := range layers {
		var err error
		if img, err = mutate.AppendLayers(img, hostileLayer(t, es)); err != nil {
			t.Fatal(err)
		}
	}
	if change == nil {
		return img
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	change(&cf.Config)
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// hostileDaemon starts a registry serving busybox and a daemon pulling from
// it, with busybox pulled.
func hostileDaemon(t *testing.T) (*framework.Daemon, *framework.Registry) {
	t.Helper()
	reg := startRegistry(t, framework.RegistryOptions{}, framework.BusyboxImage)
	d := startDaemonFor(t, reg)
	cleanupPods(t, d)
	pull(t, d, framework.BusyboxImage, factsOf(t, framework.BusyboxImage))
	return d, reg
}

// sentinels is one case's bait on the host: an empty directory of its own
// holding one file with known content, and the random token in every name
// the case plants.
type sentinels struct {
	dir, file, tok string
}

func newSentinels(t *testing.T) sentinels {
	t.Helper()
	s := sentinels{dir: t.TempDir(), tok: "hostile-" + randomHex(6)}
	s.file = filepath.Join(s.dir, "target-"+s.tok)
	if err := os.WriteFile(s.file, []byte("host sentinel "+s.tok+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// path names p inside the sentinel directory, with the token.
func (s sentinels) path(p string) string { return filepath.Join(s.dir, p+"-"+s.tok) }

// hostFiles records every path under each root (symlinks not followed):
// type, mode, size, inode, link count, mtime and a digest of a regular
// file's content.
func hostFiles(t *testing.T, roots ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := e.Info()
			if err != nil {
				return err
			}
			st := fi.Sys().(*syscall.Stat_t)
			desc := fmt.Sprintf("%v size=%d ino=%d nlink=%d mtime=%d.%09d", fi.Mode(), fi.Size(), st.Ino, st.Nlink, st.Mtim.Sec, st.Mtim.Nsec)
			if fi.Mode().IsRegular() {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				desc += fmt.Sprintf(" sha256=%x", sha256.Sum256(b))
			}
			out[p] = desc
			return nil
		})
		if err != nil {
			t.Fatalf("walk %s: %v", root, err)
		}
	}
	return out
}

// filesDiff describes what changed between two hostFiles, one line a path.
func filesDiff(before, after map[string]string) []string {
	var out []string
	for p, a := range after {
		if b, ok := before[p]; !ok {
			out = append(out, "created "+p+" ("+a+")")
		} else if a != b {
			out = append(out, "changed "+p+": "+b+" → "+a)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			out = append(out, "removed "+p)
		}
	}
	slices.Sort(out)
	return out
}

// strayPaths lists the paths named with tok where an entry that got out of
// its layer would land: the daemon's directories except its image store,
// /, /tmp and the daemon's working directory (this one).
func strayPaths(t *testing.T, d *framework.Daemon, tok string) []string {
	t.Helper()
	var out []string
	skip := []string{filepath.Join(d.Root, "storage"), filepath.Join(d.State, "storage")}
	_ = filepath.WalkDir(d.Dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if e.IsDir() && slices.Contains(skip, p) {
			return filepath.SkipDir
		}
		if strings.Contains(e.Name(), tok) {
			out = append(out, p)
		}
		return nil
	})
	wd, _ := os.Getwd()
	for _, dir := range []string{"/", os.TempDir(), "/tmp", wd} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.Contains(e.Name(), tok) {
				out = append(out, filepath.Join(dir, e.Name()))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// watchHost records the sentinels (and extra host files) before a case
// runs; the returned check fails the test for any change to them, any mount
// on them, and any stray path named with the token. Strays found are
// removed when the test ends.
func watchHost(t *testing.T, d *framework.Daemon, s sentinels, extra ...string) func() {
	t.Helper()
	roots := append([]string{s.dir}, extra...)
	before := hostFiles(t, roots...)
	if strays := strayPaths(t, d, s.tok); len(strays) > 0 {
		t.Fatalf("paths named with the fresh token %s before the case ran: %v", s.tok, strays)
	}
	return func() {
		t.Helper()
		if diff := filesDiff(before, hostFiles(t, roots...)); len(diff) > 0 {
			t.Errorf("ESCAPE: the host's sentinel files changed:\n  %s", strings.Join(diff, "\n  "))
		}
		if ms := mountsUnder(t, s.dir); len(ms) > 0 {
			t.Errorf("ESCAPE: host mounts on the sentinel directory %s: %v", s.dir, ms)
		}
		strays := strayPaths(t, d, s.tok)
		if len(strays) > 0 {
			t.Errorf("ESCAPE: host paths named with the case's token %s: %v", s.tok, strays)
		}
		t.Cleanup(func() {
			for _, p := range strays {
				if !strings.HasPrefix(p, d.Dir+"/") {
					_ = os.RemoveAll(p)
				}
			}
		})
	}
}

// refusal records why the daemon refused a step of a case: any gRPC code
// will do as long as the error says what went wrong; whether the code is
// InvalidArgument or FailedPrecondition is logged.
func refusal(t *testing.T, step string, err error) {
	t.Helper()
	c, msg := status.Code(err), status.Convert(err).Message()
	kind := "neither InvalidArgument nor FailedPrecondition"
	if c == codes.InvalidArgument || c == codes.FailedPrecondition {
		kind = "a clear refusal"
	}
	t.Logf("outcome: %s refused: %s (%s): %s", step, c, kind, msg)
	if c == codes.OK || msg == "" {
		t.Errorf("%s failed with %v and no message; want an error that says why", step, err)
	}
}

// hostilePull pushes img as docker.io/library/<name>:latest and pulls it.
// It reports whether the daemon took the image; a refused pull must leave
// no image behind.
func hostilePull(t *testing.T, d *framework.Daemon, reg *framework.Registry, name string, img v1.Image) (string, bool) {
	t.Helper()
	if _, err := reg.Push("library/"+name, "latest", img); err != nil {
		t.Fatal(err)
	}
	ref := "docker.io/library/" + name + ":latest"
	id, err := d.Images.PullImage(ctxT(t), spec(ref), nil, nil)
	if err != nil {
		refusal(t, "pull", err)
		// The image is at fault, and pulling again cannot help.
		if c := status.Code(err); c != codes.InvalidArgument {
			t.Errorf("a refused hostile pull is %v; want InvalidArgument", c)
		}
		mustBeAbsent(t, d, ref)
		return ref, false
	}
	t.Logf("outcome: pull ok (%s)", id)
	return ref, true
}

// hostileRun creates and starts cfg and returns its ID, or "" when the
// daemon refused; a refused create must leave no writable layer behind.
func hostileRun(t *testing.T, d *framework.Daemon, pod string, podCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	t.Helper()
	before := slices.Sorted(slices.Values(storageIDs(t, d)))
	id, err := d.Runtime.CreateContainer(ctxT(t), pod, cfg, podCfg)
	if err != nil {
		refusal(t, "create", err)
		if c := status.Code(err); c != codes.InvalidArgument {
			t.Errorf("a refused hostile create is %v; want InvalidArgument (the image does not fit)", c)
		}
		if after := slices.Sorted(slices.Values(storageIDs(t, d))); !slices.Equal(after, before) {
			t.Errorf("storage containers %v after the refused create; want those before it, %v", after, before)
		}
		return ""
	}
	t.Cleanup(func() {
		if d.Pid() != 0 {
			_ = d.Runtime.RemoveContainer(ctxT(t), id)
		}
	})
	if err := d.Runtime.StartContainer(ctxT(t), id); err != nil {
		refusal(t, "start (after create ok)", err)
		return ""
	}
	t.Logf("outcome: create ok, start ok")
	return id
}

// hostileExec runs script with sh -c in container id and returns its
// stdout and stderr together, and its exit code.
func hostileExec(t *testing.T, d *framework.Daemon, id, script string) (string, int) {
	t.Helper()
	stdout, stderr, err := d.Runtime.ExecSync(ctxT(t), id, []string{"sh", "-c", script}, 20*time.Second)
	var exit utilexec.ExitError
	switch {
	case errors.As(err, &exit):
		return string(stdout) + string(stderr), exit.ExitStatus()
	case err != nil:
		t.Fatalf("ExecSync(%q): %v", script, err)
	}
	return string(stdout) + string(stderr), 0
}

// sleeper is a container of image ref that waits.
func sleeper(name, ref string) *runtimeapi.ContainerConfig {
	cfg := shCfg(name, "exec sleep 1000")
	cfg.Image = spec(ref)
	return cfg
}

// TestHostileLayers pulls one image per kind of hostile tar entry and, when
// the pull is taken, runs a container of it: nothing may appear or change
// outside the image store.
func TestHostileLayers(t *testing.T) {
	t.Parallel()
	d, reg := hostileDaemon(t)
	pod, podCfg := ctrPod(t, d, "hostile-layers")
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		t.Fatal(err)
	}
	rootMajor, rootMinor := unix.Major(st.Dev), unix.Minor(st.Dev)

	for _, tc := range []struct {
		name string
		// layers are the entries of each layer over busybox, for s.
		layers func(s sentinels) [][]hostileEntry
		// inside, when set, checks a running container of the image.
		inside func(t *testing.T, d *framework.Daemon, id string, s sentinels)
		// extra host files the case must leave alone.
		extra []string
	}{
		{name: "dotdot-shallow", layers: func(s sentinels) [][]hostileEntry {
			// From <store>/overlay/<layer>/diff, four levels up is outside the store.
			return [][]hostileEntry{{hFile("../../../../tmp/"+s.tok, "escaped\n")}}
		}},
		{name: "dotdot-deep", layers: func(s sentinels) [][]hostileEntry {
			return [][]hostileEntry{{hFile(upTo(s.path("dotdot")), "escaped\n")}}
		}},
		{name: "dotdot-inner", layers: func(s sentinels) [][]hostileEntry {
			return [][]hostileEntry{{hDir("etc"), hFile("etc/"+upTo(s.path("inner")), "escaped\n")}}
		}},
		{name: "absolute-tmp", layers: func(s sentinels) [][]hostileEntry {
			return [][]hostileEntry{{hFile("/tmp/"+s.tok, "escaped\n")}}
		}},
		{name: "absolute-sentinel", layers: func(s sentinels) [][]hostileEntry {
			return [][]hostileEntry{{hFile(s.path("abs"), "escaped\n"), hDir(s.path("absdir")), hFile(s.path("absdir")+"/f", "escaped\n")}}
		}},
		{name: "symlink-same-layer", layers: func(s sentinels) [][]hostileEntry {
			return [][]hostileEntry{{hSymlink("etc/evil", s.dir), hFile("etc/evil/owned-"+s.tok, "escaped\n")}}
		}},
		{name: "symlink-then-file-same-layer", layers: func(s sentinels) [][]hostileEntry {
			// The second entry replaces what the link names: a host file, if followed.
			return [][]hostileEntry{{hSymlink("etc/evil", s.file), hFile("etc/evil", "overwritten\n")}}
		}},
		{name: "symlink-then-file-later-layer", layers: func(s sentinels) [][]hostileEntry {
			return [][]hostileEntry{{hSymlink("etc/evil", s.file)}, {hFile("etc/evil", "overwritten\n")}}
		}},
		{name: "symlink-relative-same-layer", layers: func(s sentinels) [][]hostileEntry {
			return [][]hostileEntry{{hSymlink("etc/evil", upTo(s.dir)), hFile("etc/evil/owned-"+s.tok, "escaped\n")}}
		}},
		{name: "symlink-new-dir", layers: func(s sentinels) [][]hostileEntry {
			return [][]hostileEntry{{hSymlink("etc/evil", s.path("new")), hFile("etc/evil/sub/owned", "escaped\n")}}
		}},
		{name: "symlink-later-layer", layers: func(s sentinels) [][]hostileEntry {
			return [][]hostileEntry{
				{hSymlink("etc/evil", s.dir)},
				{hFile("etc/evil/owned-"+s.tok, "escaped\n"), hDir("etc/evil/dir-" + s.tok)},
			}
		}},
		{name: "hardlink-absolute", layers: func(s sentinels) [][]hostileEntry {
			return [][]hostileEntry{{hHardlink("hl", s.file)}}
		}, inside: writeThroughLink},
		{name: "hardlink-dotdot", layers: func(s sentinels) [][]hostileEntry {
			return [][]hostileEntry{{hHardlink("hl", upTo(s.file))}}
		}, inside: writeThroughLink},
		{name: "hardlink-absolute-decoy", layers: func(s sentinels) [][]hostileEntry {
			// The layer holds a file at the host file's path, so the link can be
			// made: to the layer's copy, or to the host's by a runtime that
			// resolves the link name on the host.
			return [][]hostileEntry{{hFile(s.file, "decoy\n"), hHardlink("hl", s.file)}}
		}, inside: writeThroughLink},
		{name: "hardlink-dotdot-decoy", layers: func(s sentinels) [][]hostileEntry {
			return [][]hostileEntry{{hFile(s.file, "decoy\n"), hHardlink("hl", upTo(s.file))}}
		}, inside: writeThroughLink},
		{name: "hardlink-through-symlink", layers: func(s sentinels) [][]hostileEntry {
			return [][]hostileEntry{{hSymlink("etc/hostdir", s.dir), hHardlink("hl", "etc/hostdir/"+filepath.Base(s.file))}}
		}, inside: writeThroughLink},
		{name: "hardlink-through-symlink-later-layer", layers: func(s sentinels) [][]hostileEntry {
			return [][]hostileEntry{{hSymlink("etc/hostdir", s.dir)}, {hHardlink("hl", "etc/hostdir/"+filepath.Base(s.file))}}
		}, inside: writeThroughLink},
		{name: "hardlink-etc-shadow", layers: func(s sentinels) [][]hostileEntry {
			// Only the host file's link count and content are checked: nothing writes to it.
			return [][]hostileEntry{{hHardlink("hl-shadow", "/etc/shadow")}}
		}, extra: []string{"/etc/shadow"}},
		{name: "device-char", layers: func(s sentinels) [][]hostileEntry {
			// 1:1 is /dev/mem.
			return [][]hostileEntry{{hDevice("hostile-dev", tar.TypeChar, 1, 1)}}
		}, inside: cannotOpenDevice},
		{name: "device-block", layers: func(s sentinels) [][]hostileEntry {
			// The host's root filesystem device.
			return [][]hostileEntry{{hDevice("hostile-dev", tar.TypeBlock, rootMajor, rootMinor)}}
		}, inside: cannotOpenDevice},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSentinels(t)
			if slices.Contains(tc.extra, "/etc/shadow") && !exists("/etc/shadow") {
				t.Skip("no /etc/shadow on this host")
			}
			check := watchHost(t, d, s, tc.extra...)
			img := hostileImage(t, nil, tc.layers(s)...)
			ref, ok := hostilePull(t, d, reg, "hostile-"+tc.name, img)
			if ok {
				if id := hostileRun(t, d, pod, podCfg, sleeper(tc.name, ref)); id != "" {
					// Where the entries ended up, as the container sees it.
					out, _ := hostileExec(t, d, id, "find / -xdev -name '*"+s.tok+"*' -o -xdev -path /etc/evil -o -xdev -name 'hl*' | head -20")
					t.Logf("in the container: %q", out)
					if tc.inside != nil {
						tc.inside(t, d, id, s)
					}
				}
			}
			check()
		})
	}
	// The daemon is still healthy after all that.
	if _, err := d.Runtime.Version(ctxT(t), "v1"); err != nil {
		t.Errorf("Version after the hostile pulls: %v", err)
	}
}

// writeThroughLink appends to /hl in the container. /hl must not be the
// host file (same inode), and the host file must keep its content and link
// count (watchHost compares both).
func writeThroughLink(t *testing.T, d *framework.Daemon, id string, s sentinels) {
	var st unix.Stat_t
	if err := unix.Stat(s.file, &st); err != nil {
		t.Fatal(err)
	}
	if out, code := hostileExec(t, d, id, "stat -c %i /hl"); code == 0 && strings.TrimSpace(out) == fmt.Sprint(st.Ino) {
		t.Errorf("ESCAPE: /hl in the container is inode %d, the host's %s", st.Ino, s.file)
	}
	out, code := hostileExec(t, d, id, "echo x >> /hl; echo rc=$?; ls -li /hl; cat /hl")
	t.Logf("append to /hl in the container: exit %d: %q", code, out)
}

// cannotOpenDevice reads from the device node the image planted: the
// devices cgroup must refuse it.
func cannotOpenDevice(t *testing.T, d *framework.Daemon, id string, _ sentinels) {
	out, code := hostileExec(t, d, id, "ls -l /hostile-dev; head -c 16 /hostile-dev >/dev/null")
	t.Logf("read /hostile-dev in the container: exit %d: %q", code, out)
	if code == 0 {
		t.Errorf("the container read the host device through a node its image planted: %q", out)
	}
}

// TestHostileRootfsSymlinks runs containers of images whose rootfs holds
// symlinks to host paths right where the runtime puts something: the pod's
// /etc/hosts, /etc/hostname and /etc/resolv.conf, a requested mount, the
// working directory. The runtime must resolve them inside the rootfs, or
// refuse the container with a clear error.
func TestHostileRootfsSymlinks(t *testing.T) {
	t.Parallel()
	d, reg := hostileDaemon(t)
	podCfg := podConfig("hostile-rootfs")
	podCfg.LogDirectory = t.TempDir()
	podCfg.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"10.96.0.53"}, Searches: []string{"hostile.svc.cluster.local"}}
	pod := runPod(t, d, podCfg)
	hosts := readTrimmed(t, filepath.Join(podDir(d, pod), "hosts"))

	// podFiles checks that the container sees the pod's three files.
	podFiles := func(t *testing.T, id string, _ sentinels) {
		t.Helper()
		for _, f := range []struct{ path, want string }{
			{"/etc/hostname", podCfg.Hostname},
			{"/etc/hosts", hosts},
			{"/etc/resolv.conf", "search hostile.svc.cluster.local\nnameserver 10.96.0.53"},
		} {
			if out, code := hostileExec(t, d, id, "cat "+f.path); code != 0 || strings.TrimSpace(out) != f.want {
				t.Errorf("cat %s in the container: exit %d %q; want the pod's %q", f.path, code, out, f.want)
			}
		}
	}
	// mounted checks that the host directory src is what the container
	// finds at dir, both ways.
	mounted := func(dir, src string) func(t *testing.T, id string, s sentinels) {
		return func(t *testing.T, id string, s sentinels) {
			t.Helper()
			out, code := hostileExec(t, d, id, "cat "+dir+"/marker && echo from-ctr > "+dir+"/from-ctr")
			if code != 0 || out != "mount source "+s.tok+"\n" {
				t.Errorf("cat %s/marker in the container: exit %d %q; want the mount source's marker", dir, code, out)
			}
			if b, err := os.ReadFile(filepath.Join(src, "from-ctr")); err != nil || string(b) != "from-ctr\n" {
				t.Errorf("%s/from-ctr written in the container: in the mount source %q, %v; want from-ctr", dir, b, err)
			}
		}
	}
	// mountSource is a host directory, outside the sentinels, holding a marker.
	mountSource := func(t *testing.T, s sentinels) string {
		src := t.TempDir()
		if err := os.WriteFile(filepath.Join(src, "marker"), []byte("mount source "+s.tok+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return src
	}
	// workdir checks that the container works in a directory of its own,
	// empty in the image: it can write there and sees nothing else.
	workdir := func(t *testing.T, id string, _ sentinels) {
		t.Helper()
		out, code := hostileExec(t, d, id, "pwd -P; echo owned > owned && echo wrote && ls -A")
		t.Logf("in the working directory: exit %d %q", code, out)
		if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 3 || lines[1] != "wrote" || lines[2] != "owned" {
			t.Errorf("pwd, write and ls in the working directory: exit %d %q; want the write to work and ls to show only what it wrote", code, out)
		}
	}

	for _, tc := range []struct {
		name string
		// setup prepares more host bait in the sentinel directory.
		setup  func(t *testing.T, s sentinels)
		layers func(s sentinels) [][]hostileEntry
		image  func(c *v1.Config, s sentinels)
		// ctr adjusts the container's request.
		ctr    func(t *testing.T, cfg *runtimeapi.ContainerConfig, s sentinels)
		inside func(t *testing.T, id string, s sentinels)
	}{
		{name: "pod-files", layers: func(s sentinels) [][]hostileEntry {
			return [][]hostileEntry{{
				hSymlink("etc/hosts", s.path("hosts")),
				hSymlink("etc/hostname", s.file),
				hSymlink("etc/resolv.conf", s.path("missing")+"/resolv.conf"),
			}}
		}, inside: podFiles},
		{name: "pod-files-relative", layers: func(s sentinels) [][]hostileEntry {
			return [][]hostileEntry{{
				hSymlink("etc/hosts", upTo(s.path("hosts"))),
				hSymlink("etc/hostname", upTo(s.file)),
				hSymlink("etc/resolv.conf", upTo(s.path("missing")+"/resolv.conf")),
			}}
		}, inside: podFiles},
		{name: "etc-is-symlink", setup: func(t *testing.T, s sentinels) {
			if err := os.Mkdir(s.path("etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(s.path("etc"), "hostname"), []byte("host file "+s.tok+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, layers: func(s sentinels) [][]hostileEntry {
			return [][]hostileEntry{{hSymlink("etc", s.path("etc"))}}
		}, inside: podFiles},
		{name: "mount-through-symlink", setup: func(t *testing.T, s sentinels) {
			if err := os.Mkdir(s.path("linked"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, layers: func(s sentinels) [][]hostileEntry {
			return [][]hostileEntry{{hDir("data"), hSymlink("data/link", s.path("linked"))}}
		}, ctr: func(t *testing.T, cfg *runtimeapi.ContainerConfig, s sentinels) {
			cfg.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data/link/sub", HostPath: mountSource(t, s)}}
		}},
		{name: "mount-at-symlink", setup: func(t *testing.T, s sentinels) {
			if err := os.Mkdir(s.path("linked"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, layers: func(s sentinels) [][]hostileEntry {
			return [][]hostileEntry{{hDir("data"), hSymlink("data/link", s.path("linked"))}}
		}, ctr: func(t *testing.T, cfg *runtimeapi.ContainerConfig, s sentinels) {
			cfg.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data/link", HostPath: mountSource(t, s)}}
		}},
		{name: "mount-through-relative-symlink", setup: func(t *testing.T, s sentinels) {
			if err := os.Mkdir(s.path("linked"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, layers: func(s sentinels) [][]hostileEntry {
			return [][]hostileEntry{{hDir("data"), hSymlink("data/link", upTo(s.path("linked")))}}
		}, ctr: func(t *testing.T, cfg *runtimeapi.ContainerConfig, s sentinels) {
			cfg.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data/link/sub", HostPath: mountSource(t, s)}}
		}},
		{name: "mount-through-symlink-to-absent-dir", layers: func(s sentinels) [][]hostileEntry {
			return [][]hostileEntry{{hDir("data"), hSymlink("data/link", s.path("absent"))}}
		}, ctr: func(t *testing.T, cfg *runtimeapi.ContainerConfig, s sentinels) {
			cfg.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data/link/sub", HostPath: mountSource(t, s)}}
		}},
		{name: "workdir-image-dangling", layers: func(s sentinels) [][]hostileEntry {
			// The link leads nowhere, in the container and on the host.
			return [][]hostileEntry{{hSymlink("work", s.path("wd"))}}
		}, image: func(c *v1.Config, _ sentinels) { c.WorkingDir = "/work" }, inside: workdir},
		{name: "workdir-image-to-absent-host-dir", layers: func(s sentinels) [][]hostileEntry {
			// The link's target exists in the image only.
			return [][]hostileEntry{{hDir(s.path("wd")), hSymlink("work", s.path("wd"))}}
		}, image: func(c *v1.Config, _ sentinels) { c.WorkingDir = "/work" }, inside: workdir},
		{name: "workdir-image-to-host-dir", layers: func(s sentinels) [][]hostileEntry {
			// The link's target exists in the image and on the host, with a file there.
			return [][]hostileEntry{{hDir(s.dir), hSymlink("work", s.dir)}}
		}, image: func(c *v1.Config, _ sentinels) { c.WorkingDir = "/work" }, inside: workdir},
		{name: "workdir-request-through-symlink", setup: func(t *testing.T, s sentinels) {
			if err := os.MkdirAll(filepath.Join(s.path("wd"), "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(s.path("wd"), "sub", "host-file"), []byte("host\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, layers: func(s sentinels) [][]hostileEntry {
			return [][]hostileEntry{{hDir(s.path("wd")), hSymlink("work", s.path("wd"))}}
		}, ctr: func(t *testing.T, cfg *runtimeapi.ContainerConfig, _ sentinels) {
			cfg.WorkingDir = "/work/sub"
		}, inside: workdir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSentinels(t)
			if tc.setup != nil {
				tc.setup(t, s)
			}
			check := watchHost(t, d, s)
			var change func(*v1.Config)
			if tc.image != nil {
				change = func(c *v1.Config) { tc.image(c, s) }
			}
			ref, ok := hostilePull(t, d, reg, "hostile-"+tc.name, hostileImage(t, change, tc.layers(s)...))
			if !ok {
				t.Fatalf("the image was refused; it holds nothing but symlinks and must be pulled")
			}
			cfg := sleeper(tc.name, ref)
			if tc.ctr != nil {
				tc.ctr(t, cfg, s)
			}
			if id := hostileRun(t, d, pod, podCfg, cfg); id != "" {
				if len(cfg.Mounts) > 0 {
					mounted(cfg.Mounts[0].ContainerPath, cfg.Mounts[0].HostPath)(t, id, s)
				}
				if tc.inside != nil {
					tc.inside(t, id, s)
				}
			}
			check()
		})
	}
}
