package e2e

// What a container may do and see: its user and groups, a read-only root,
// masked paths, capabilities, host directories shared between containers,
// mount propagation from the host, and how conmon splits a long log line.

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// endMark is the last line every script here prints, so that a test knows
// the log is complete before it looks at it.
const endMark = "--end--"

// secCtx is the container's security context (shCfg always sets one).
func secCtx(cfg *runtimeapi.ContainerConfig) *runtimeapi.LinuxContainerSecurityContext {
	return cfg.Linux.SecurityContext
}

// runOutput runs cfg (whose script ends with `echo --end--`) to its exit and
// returns its stdout and stderr lines (partial lines joined), without the end mark.
func runOutput(t *testing.T, d *framework.Daemon, pod string, podCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) (out, errOut []string) {
	t.Helper()
	_, out, errOut = runOutputID(t, d, pod, podCfg, cfg)
	return out, errOut
}

// runOutputID is runOutput that also returns the container's ID.
func runOutputID(t *testing.T, d *framework.Daemon, pod string, podCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) (id string, out, errOut []string) {
	t.Helper()
	id = runCtr(t, d, pod, podCfg, cfg)
	d.WaitExited(t, id)
	var lines []framework.LogLine
	var err error
	eventually(10*time.Second, func() bool {
		lines, err = framework.ReadCRILog(logFile(podCfg, cfg))
		out = framework.Joined(lines, "stdout")
		return err == nil && len(out) > 0 && out[len(out)-1] == endMark
	})
	if err != nil || len(out) == 0 || out[len(out)-1] != endMark {
		raw, _ := os.ReadFile(logFile(podCfg, cfg))
		t.Fatalf("log of %s: parse error %v; no final %q line; raw:\n%s", cfg.Metadata.Name, err, endMark, raw)
	}
	return id, out[:len(out)-1], framework.Joined(lines, "stderr")
}

// groupImage is the named-user image with an /etc/group in which "app" is
// also a member of the group "extra" (7000).
func groupImage(t *testing.T) *framework.TestImage {
	t.Helper()
	group := "root:x:0:\nnobody:x:65534:\napp:x:1000:\nextra:x:7000:app\n"
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/group", Mode: 0o644, Size: int64(len(group)), ModTime: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(group)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	blob := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(testImages[framework.NamedUserImage].Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	return &framework.TestImage{Name: "docker.io/library/busybox-groups:latest", Repo: "library/busybox-groups", Tag: "latest", Image: img}
}

func TestContainerSecurityUsers(t *testing.T) {
	t.Parallel()
	extra := groupImage(t)
	reg := startRegistry(t, framework.RegistryOptions{}, framework.BusyboxImage, framework.UIDGIDImage, framework.NamedUserImage)
	if _, err := reg.Push(extra.Repo, extra.Tag, extra.Image); err != nil {
		t.Fatal(err)
	}
	d := startDaemonFor(t, reg)
	cleanupPods(t, d)
	for _, ref := range []string{framework.BusyboxImage, framework.UIDGIDImage, framework.NamedUserImage, extra.Name} {
		if _, err := d.Images.PullImage(ctxT(t), spec(ref), nil, nil); err != nil {
			t.Fatalf("PullImage(%s): %v", ref, err)
		}
	}
	pod, podCfg := ctrPod(t, d, "users")

	for _, tc := range []struct {
		name, image, script string
		change              func(*runtimeapi.LinuxContainerSecurityContext)
		want                []string
	}{
		{"image uid gid", framework.UIDGIDImage, "id -u; id -g", nil, []string{"1234", "5678"}},
		{"image named user", framework.NamedUserImage, "id -u; id -g; id -un; id -gn", nil, []string{"1000", "1000", "app", "app"}},
		{"run as user and group override the image", framework.UIDGIDImage, "id -u; id -g", func(s *runtimeapi.LinuxContainerSecurityContext) {
			s.RunAsUser, s.RunAsGroup = &runtimeapi.Int64Value{Value: 2000}, &runtimeapi.Int64Value{Value: 3000}
		}, []string{"2000", "3000"}},
		{"supplemental groups", framework.NamedUserImage, "id -G", func(s *runtimeapi.LinuxContainerSecurityContext) {
			s.SupplementalGroups = []int64{4000}
		}, []string{"1000 4000"}},
		{"merge adds the image user's groups", extra.Name, "id -G", func(s *runtimeapi.LinuxContainerSecurityContext) {
			s.SupplementalGroups = []int64{4000}
		}, []string{"1000 4000 7000"}},
		{"strict leaves the image user's groups out", extra.Name, "id -G", func(s *runtimeapi.LinuxContainerSecurityContext) {
			s.SupplementalGroups = []int64{4000}
			s.SupplementalGroupsPolicy = runtimeapi.SupplementalGroupsPolicy_Strict
		}, []string{"1000 4000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "-")
			cfg := shCfg(name, tc.script+"; echo "+endMark)
			cfg.Image = spec(tc.image)
			if tc.change != nil {
				tc.change(secCtx(cfg))
			}
			id, out, errOut := runOutputID(t, d, pod, podCfg, cfg)
			// id -G may list the groups in any order.
			if len(out) == 1 && len(tc.want) == 1 && strings.Contains(tc.script, "-G") {
				got, want := strings.Fields(out[0]), strings.Fields(tc.want[0])
				slices.Sort(got)
				slices.Sort(want)
				out = []string{strings.Join(got, " ")}
				tc.want = []string{strings.Join(want, " ")}
				// ContainerStatus reports the same groups (the kubelet
				// checks SupplementalGroupsPolicy with them).
				st, err := d.Runtime.ContainerStatus(ctxT(t), id, false)
				if err != nil {
					t.Fatal(err)
				}
				var groups []string
				for _, g := range st.GetStatus().GetUser().GetLinux().GetSupplementalGroups() {
					groups = append(groups, strconv.FormatInt(g, 10))
				}
				slices.Sort(groups)
				if strings.Join(groups, " ") != tc.want[0] || st.GetStatus().GetUser().GetLinux().GetUid() != 1000 {
					t.Errorf("ContainerStatus user = %v; want uid 1000 and groups %s", st.GetStatus().GetUser(), tc.want[0])
				}
			}
			if !slices.Equal(out, tc.want) {
				t.Errorf("output %q (stderr %q); want %q", out, errOut, tc.want)
			}
		})
	}
}

func TestContainerSecurityReadonlyRootfs(t *testing.T) {
	t.Parallel()
	d, _ := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "readonly")
	host := t.TempDir()
	cfg := shCfg("ro", `(echo x > /x) 2>&1; echo "root=$?"; echo data > /data/ok; echo "data=$?"; echo `+endMark)
	secCtx(cfg).ReadonlyRootfs = true
	cfg.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: host}}
	out, errOut := runOutput(t, d, pod, podCfg, cfg)
	if len(out) != 3 || !strings.Contains(out[0], "Read-only file system") || out[1] == "root=0" || out[2] != "data=0" {
		t.Errorf("output %q (stderr %q); want a Read-only file system error for /x, a non-zero status, then data=0", out, errOut)
	}
	if b, err := os.ReadFile(filepath.Join(host, "ok")); err != nil || string(b) != "data\n" {
		t.Errorf("host file written through the writable mount: %q, %v; want \"data\\n\"", b, err)
	}
}

func TestContainerSecurityMaskedPaths(t *testing.T) {
	t.Parallel()
	// A masked file is /dev/null (reads nothing), a masked directory an empty
	// read-only tmpfs. Pick a masked file that the host kernel has and that
	// reads something there.
	file := ""
	for _, p := range []string{"/proc/kcore", "/proc/timer_list", "/proc/keys", "/proc/sched_debug"} {
		if f, err := os.Open(p); err == nil {
			n, _ := f.Read(make([]byte, 1))
			f.Close()
			if n == 1 {
				file = p
				break
			}
		}
	}
	dirs, _ := os.ReadDir("/sys/firmware")
	if file == "" || len(dirs) == 0 {
		t.Skipf("host has no readable masked /proc file or an empty /sys/firmware")
	}
	d, _ := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "masked")
	script := "head -c 1 " + file + " | wc -c; ls -A /sys/firmware | wc -l; echo " + endMark
	for _, tc := range []struct {
		name       string
		privileged bool
		masked     bool
	}{{"default", false, true}, {"privileged", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := shCfg(tc.name, script)
			secCtx(cfg).Privileged = tc.privileged
			out, errOut := runOutput(t, d, pod, podCfg, cfg)
			if len(out) != 2 {
				t.Fatalf("output %q (stderr %q); want two counts", out, errOut)
			}
			masked := out[0] == "0" && out[1] == "0"
			unmasked := out[0] == "1" && out[1] != "0"
			if tc.masked && !masked || !tc.masked && !unmasked {
				t.Errorf("%s: bytes read %s, entries in /sys/firmware %s (stderr %q); want masked=%v", file, out[0], out[1], errOut, tc.masked)
			}
		})
	}
}

func TestContainerSecurityCapabilities(t *testing.T) {
	t.Parallel()
	d, _ := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "caps")
	// The host kernel may lack the dummy link type; a bridge is built in more often.
	const addLink = `ip link add e2ebr0 type bridge 2>&1; echo "add=$?"; ip link del e2ebr0 2>/dev/null; echo ` + endMark
	const capEff = `sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status; echo ` + endMark
	caps := func(add, drop []string) func(*runtimeapi.LinuxContainerSecurityContext) {
		return func(s *runtimeapi.LinuxContainerSecurityContext) {
			s.Capabilities = &runtimeapi.Capability{AddCapabilities: add, DropCapabilities: drop}
		}
	}
	for _, tc := range []struct {
		name, script string
		change       func(*runtimeapi.LinuxContainerSecurityContext)
		check        func(out []string) bool
		want         string
	}{
		{"default lacks NET_ADMIN", addLink, nil,
			func(out []string) bool { return len(out) >= 1 && out[len(out)-1] != "add=0" }, "ip link add to fail"},
		{"NET_ADMIN added", addLink, caps([]string{"NET_ADMIN"}, nil),
			func(out []string) bool { return slices.Equal(out, []string{"add=0"}) }, `["add=0"]`},
		{"default set", capEff, nil,
			func(out []string) bool {
				m, err := strconv.ParseUint(strings.Join(out, ""), 16, 64)
				return len(out) == 1 && err == nil && m != 0 && m&(1<<12) == 0
			}, "a mask without bit 12 (NET_ADMIN)"},
		{"drop ALL", capEff, caps(nil, []string{"ALL"}),
			func(out []string) bool { return slices.Equal(out, []string{"0000000000000000"}) }, `["0000000000000000"]`},
		{"drop ALL add CHOWN", capEff, caps([]string{"CHOWN"}, []string{"ALL"}),
			func(out []string) bool { return slices.Equal(out, []string{"0000000000000001"}) }, `["0000000000000001"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := shCfg(strings.ReplaceAll(tc.name, " ", "-"), tc.script)
			if tc.change != nil {
				tc.change(secCtx(cfg))
			}
			out, errOut := runOutput(t, d, pod, podCfg, cfg)
			if !tc.check(out) {
				t.Errorf("output %q (stderr %q); want %s", out, errOut, tc.want)
			}
		})
	}
}

func TestContainerSecuritySharedHostDir(t *testing.T) {
	t.Parallel()
	d, _ := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "shared")
	host := t.TempDir()

	a := shCfg("writer", "echo hello-from-a > /data/from-a; echo "+endMark)
	a.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: host}}
	if out, errOut := runOutput(t, d, pod, podCfg, a); len(out) != 0 || len(errOut) != 0 {
		t.Fatalf("writer: stdout %q stderr %q; want nothing", out, errOut)
	}
	b := shCfg("reader", `cat /data/from-a; (echo x > /data/from-b) 2>&1; echo "write=$?"; echo `+endMark)
	b.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: host, Readonly: true}}
	out, errOut := runOutput(t, d, pod, podCfg, b)
	if len(out) != 3 || out[0] != "hello-from-a" || !strings.Contains(out[1], "Read-only file system") || out[2] == "write=0" {
		t.Errorf("reader: output %q (stderr %q); want hello-from-a, a Read-only file system error, a non-zero status", out, errOut)
	}
	if exists(filepath.Join(host, "from-b")) {
		t.Errorf("the read-only reader created from-b in the host directory")
	}
}

func TestContainerSecurityMountPropagation(t *testing.T) {
	t.Parallel()
	d, _ := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "propagation")
	host := t.TempDir()
	sub := filepath.Join(host, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	// Host-to-container propagation needs a shared mount at the source.
	if err := unix.Mount(host, host, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount %s on itself: %v", host, err)
	}
	t.Cleanup(func() { unmountUnder(t, host) })
	if err := unix.Mount("", host, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		t.Fatalf("make %s rshared: %v", host, err)
	}

	watch := shCfg("slave", `echo waiting; i=0; while [ $i -lt 150 ]; do if [ -f /mnt/sub/marker ]; then cat /mnt/sub/marker; echo seen; exit 0; fi; sleep 0.2; i=$((i+1)); done; echo timeout`)
	watch.Mounts = []*runtimeapi.Mount{{ContainerPath: "/mnt", HostPath: host, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER}}
	watchID := runCtr(t, d, pod, podCfg, watch)
	private := shCfg("private", "echo waiting; exec sleep 1000")
	private.Mounts = []*runtimeapi.Mount{{ContainerPath: "/mnt", HostPath: host, Propagation: runtimeapi.MountPropagation_PROPAGATION_PRIVATE}}
	privID := runCtr(t, d, pod, podCfg, private)
	waitLog(t, podCfg, watch, []string{"waiting"}, nil)
	waitLog(t, podCfg, private, []string{"waiting"}, nil)
	// Status reports each mount's propagation as requested (critest checks it).
	for _, c := range []struct {
		id   string
		want runtimeapi.MountPropagation
	}{{watchID, runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER}, {privID, runtimeapi.MountPropagation_PROPAGATION_PRIVATE}} {
		st, err := d.Runtime.ContainerStatus(ctxT(t), c.id, false)
		if err != nil {
			t.Fatal(err)
		}
		if m := st.GetStatus().GetMounts(); len(m) != 1 || m[0].GetPropagation() != c.want || m[0].GetHostPath() != host {
			t.Errorf("ContainerStatus(%s).Mounts = %v; want one mount of %s with propagation %v", c.id, m, host, c.want)
		}
	}

	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", sub, err)
	}
	if err := os.WriteFile(filepath.Join(sub, "marker"), []byte("from-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitLog(t, podCfg, watch, []string{"waiting", "from-host", "seen"}, nil)

	stdout, stderr, err := d.Runtime.ExecSync(ctxT(t), privID, []string{"ls", "-A", "/mnt/sub"}, 10*time.Second)
	if err != nil || len(bytes.TrimSpace(stdout)) != 0 {
		t.Errorf("ls /mnt/sub in the private container: %q %q %v; want it empty (the host's new mount not propagated)", stdout, stderr, err)
	}
}

func TestContainerLogPartialLines(t *testing.T) {
	t.Parallel()
	d, _ := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "partial")
	const n = 20000
	cfg := shCfg("long", `yes a | head -n 20000 | tr -d '\n'; echo; echo `+endMark)
	runOutput(t, d, pod, podCfg, cfg)
	lines, err := framework.ReadCRILog(logFile(podCfg, cfg))
	if err != nil {
		t.Fatal(err)
	}
	// The records before the first full (F) one make up the long line.
	end := slices.IndexFunc(lines, func(l framework.LogLine) bool { return !l.Partial })
	if end < 1 {
		t.Fatalf("log has %d records, the first full one at %d; want partial (P) records before a final F", len(lines), end)
	}
	var joined strings.Builder
	for _, l := range lines[:end+1] {
		if l.Stream != "stdout" {
			t.Errorf("record on %s; want stdout", l.Stream)
		}
		joined.WriteString(l.Text)
	}
	if got := joined.String(); got != strings.Repeat("a", n) {
		t.Errorf("the %d records (%d P + 1 F) join to %d bytes (%.20q...); want %d a's", end+1, end, len(got), got, n)
	}
	if rest := lines[end+1:]; len(rest) != 1 || rest[0].Text != endMark || rest[0].Partial {
		t.Errorf("records after the long line: %+v; want one full %q", rest, endMark)
	}
}

// TestContainerSecurityRecursiveReadOnly: the default handler advertises
// recursive read-only mounts (runc and this kernel have them); a read-only
// mount leaves a sub-mount writable, a recursive one does not; and the
// combinations api.proto forbids are InvalidArgument.
func TestContainerSecurityRecursiveReadOnly(t *testing.T) {
	t.Parallel()
	d, _ := startCtrDaemon(t)
	st, err := d.Runtime.Status(ctxT(t), false)
	if err != nil {
		t.Fatal(err)
	}
	var rro bool
	for _, h := range st.GetRuntimeHandlers() {
		if h.GetName() == "" {
			rro = h.GetFeatures().GetRecursiveReadOnlyMounts()
		}
	}
	if !rro {
		t.Fatalf("Status: the default handler does not advertise recursive read-only mounts: %v", st.GetRuntimeHandlers())
	}
	if !st.GetFeatures().GetSupplementalGroupsPolicy() {
		t.Errorf("Status: SupplementalGroupsPolicy not advertised: %v", st.GetFeatures())
	}

	pod, podCfg := ctrPod(t, d, "rro")
	host := t.TempDir()
	sub := filepath.Join(host, "tmpfs")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", sub, err)
	}
	t.Cleanup(func() { unmountUnder(t, host) })

	for _, tc := range []struct {
		name string
		rro  bool
		want string
	}{
		{"readonly", false, "written"},
		{"recursive", true, "Read-only file system"},
	} {
		cfg := shCfg(tc.name, "touch /mnt/tmpfs/"+tc.name+" 2>&1 && echo written; echo "+endMark)
		cfg.Mounts = []*runtimeapi.Mount{{ContainerPath: "/mnt", HostPath: host, Readonly: true, RecursiveReadOnly: tc.rro}}
		out, _ := runOutput(t, d, pod, podCfg, cfg)
		if len(out) != 1 || !strings.Contains(out[0], tc.want) {
			t.Errorf("%s mount: touch in a sub-mount printed %q; want %q", tc.name, out, tc.want)
		}
	}

	for _, m := range []*runtimeapi.Mount{
		{ContainerPath: "/mnt", HostPath: host, Readonly: false, RecursiveReadOnly: true},
		{ContainerPath: "/mnt", HostPath: host, Readonly: true, RecursiveReadOnly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
		{ContainerPath: "/mnt", HostPath: host, Readonly: true, RecursiveReadOnly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL},
	} {
		cfg := shCfg("bad-rro", "true")
		cfg.Mounts = []*runtimeapi.Mount{m}
		if _, err := d.Runtime.CreateContainer(ctxT(t), pod, cfg, podCfg); status.Code(err) != codes.InvalidArgument {
			t.Errorf("CreateContainer with %v: %v; want InvalidArgument", m, err)
		}
	}
}
