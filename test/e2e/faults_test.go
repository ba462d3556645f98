package e2e

// Faults of the host under the daemon: a full disk under --root.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/client-go/tools/remotecommand"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// smallRoot mounts a tmpfs of size bytes for a daemon's --root. It is
// detached when the test ends, after the daemon (registered first, so it
// runs last).
func smallRoot(t *testing.T, size string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "crirt-small-")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		os.Remove(dir)
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
		os.RemoveAll(dir)
	})
	return dir
}

// recordedState is the container's state as its record under root says.
func recordedState(t *testing.T, root, id string) (state string, exitCode int32) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "containers", id, "container.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		State    string `json:"state"`
		ExitCode int32  `json:"exitCode"`
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	return rec.State, rec.ExitCode
}

// A container fills the disk under --root from its writable layer. The
// daemon must keep serving: StopContainer and RemoveContainer, which must
// write records, answer ResourceExhausted; ContainerStatus shows the exit;
// a restart with the disk still full works; nothing is lost, and once
// space returns the exit is recorded and the container removed.
func TestFullDiskUnderRoot(t *testing.T) {
	t.Parallel()
	root := smallRoot(t, "48m")
	reg := startRegistry(t, framework.RegistryOptions{}, framework.BusyboxImage)
	conf := filepath.Join(t.TempDir(), "registries.conf")
	if err := reg.WriteRegistriesConf(conf); err != nil {
		t.Fatal(err)
	}
	d := startPodDaemon(t, "--registries-conf", conf, "--root", root)
	pull(t, d, framework.BusyboxImage, factsOf(t, framework.BusyboxImage))
	pod, podCfg := ctrPod(t, d, "fulldisk")
	id := runCtr(t, d, pod, podCfg, shCfg("filler", "dd if=/dev/zero of=/fill bs=1M; echo filled; exec sleep 3600"))

	full := func() bool {
		var st unix.Statfs_t
		return unix.Statfs(root, &st) == nil && st.Bavail == 0
	}
	if !eventually(time.Minute, full) {
		t.Fatalf("the container did not fill %s", root)
	}

	alive := func(when string) {
		t.Helper()
		if _, err := d.Runtime.Version(ctxT(t), ""); err != nil {
			t.Fatalf("%s: the daemon no longer answers: %v\n%s", when, err, d.ExitErr())
		}
	}
	// Restart with the disk full: the daemon comes back and serves.
	if err := d.Stop(unix.SIGTERM, 30*time.Second); err != nil {
		t.Fatalf("stop daemon: %v", err)
	}
	if err := d.Start(); err != nil {
		t.Fatalf("restart on a full disk: %v\n%s", err, d.Logs())
	}
	alive("after the restart")
	if st := d.CtrStatus(t, id); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("ContainerStatus after the restart: %v; want RUNNING", st.State)
	}
	if !full() {
		t.Fatal("the disk is no longer full; the test proves nothing")
	}

	// The kubelet frees the disk by stopping and removing the container
	// that filled it: both succeed on the full disk, on the daemon's disk
	// reserve, and the removal gives the space back.
	if err := d.Runtime.StopContainer(ctxT(t), id, 0); err != nil {
		t.Errorf("StopContainer on a full disk: %v; want success", err)
	}
	alive("after StopContainer")
	st := d.CtrStatus(t, id)
	if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 137 {
		t.Errorf("ContainerStatus after the kill: state %v, exit code %d; want EXITED, 137", st.State, st.ExitCode)
	}
	if s, code := recordedState(t, root, id); s != "exited" || code != 137 {
		t.Errorf("record after StopContainer on a full disk: state %q, exit %d; want exited, 137", s, code)
	}
	if err := d.Runtime.RemoveContainer(ctxT(t), id); err != nil {
		t.Fatalf("RemoveContainer on a full disk: %v; want success", err)
	}
	// The writable layer and the record go after the call returns.
	if !eventually(30*time.Second, func() bool { return !full() }) {
		t.Error("the disk is still full after the container that filled it was removed")
	}
	if !eventually(30*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(root, "containers", id))
		return errors.Is(err, os.ErrNotExist)
	}) {
		t.Errorf("the removed container's record is left")
	}
	// The reserve is set aside again now that there is room.
	if !eventually(time.Minute, func() bool { return reserveHeld(root) }) {
		t.Error("the disk reserve was not set aside again once space returned")
	}
	if logs := d.Logs(); strings.Contains(logs, "panic") {
		t.Errorf("the daemon panicked:\n%s", logs)
	}
}

// busyboxPlus is busybox with one small layer of its own on top, so that
// pulling it downloads that layer (busybox's are already stored).
func busyboxPlus(t *testing.T, marker string) (v1.Image, string) {
	t.Helper()
	l := hostileLayer(t, []hostileEntry{hFile("marker", marker+randomHex(8))})
	img, err := mutate.AppendLayers(testImages[framework.BusyboxImage].Image, l)
	if err != nil {
		t.Fatal(err)
	}
	dg, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return img, dg.String()
}

// A failed pull while a slow pull runs: the failed pull's cleanup of the
// layers it wrote must not make anyone wait for the slow pull. Before, the
// cleanup took the layer lock for writing and queued behind the slow
// pull's read lock; every later pull and CreateContainer queued behind it.
func TestFailedPullStallsNothing(t *testing.T) {
	t.Parallel()
	raceBuild(t)
	regA := startRegistry(t, framework.RegistryOptions{}, framework.BusyboxImage)
	slow, _ := busyboxPlus(t, "slow")
	if _, err := regA.Push("library/slow", "latest", slow); err != nil {
		t.Fatal(err)
	}
	regB := startRegistry(t, framework.RegistryOptions{})
	broken, brokenLayer := busyboxPlus(t, "broken")
	other, _ := busyboxPlus(t, "other")
	for name, img := range map[string]v1.Image{"broken": broken, "other": other} {
		if _, err := regB.Push("library/"+name, "latest", img); err != nil {
			t.Fatal(err)
		}
	}
	regB.BreakBlob(brokenLayer)
	d := startDaemonFor(t, regA, regB.Addr())
	cleanupPods(t, d)
	pull(t, d, framework.BusyboxImage, factsOf(t, framework.BusyboxImage))
	pod, podCfg := ctrPod(t, d, "stall")

	// The slow pull: its blobs are held until the end of the test.
	regA.HoldBlobs()
	slowDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		_, err := d.Images.PullImage(ctx, spec("docker.io/library/slow:latest"), nil, nil)
		slowDone <- err
	}()
	released := false
	t.Cleanup(func() {
		if !released {
			regA.ReleaseBlobs()
			<-slowDone
		}
	})
	wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := regA.WaitHeldBlobs(wctx, 1); err != nil {
		t.Fatalf("the slow pull did not begin: %v", err)
	}

	// Generous deadlines: each call takes well under a second when it
	// waits for nothing; before the fix each waited for the slow pull.
	prompt := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		return ctx
	}
	_, err := d.Images.PullImage(prompt(), spec(regB.Ref("library/broken", "latest")), nil, nil)
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("PullImage of an image with a broken layer: %v; want Unavailable, at once", err)
	}
	if regB.AbortedFetches(brokenLayer) == 0 {
		t.Fatalf("the broken layer was never fetched: the failure was not exercised")
	}
	id, err := d.Runtime.CreateContainer(prompt(), pod, shCfg("c", "true"), podCfg)
	if err != nil {
		t.Fatalf("CreateContainer of a present image while a pull runs and another failed: %v", err)
	}
	if _, err := d.Images.PullImage(prompt(), spec(regB.Ref("library/other", "latest")), nil, nil); err != nil {
		t.Fatalf("PullImage of another image while a pull runs and another failed: %v", err)
	}
	if err := d.Runtime.RemoveContainer(prompt(), id); err != nil {
		t.Fatalf("RemoveContainer: %v", err)
	}

	regA.ReleaseBlobs()
	released = true
	if err := <-slowDone; err != nil {
		t.Fatalf("the slow pull, released: %v", err)
	}
}

// Requests the runtime cannot honour get a precise code, before anything
// is created: not Unknown from runc, sethostname or inotify.
func TestBadRequestsGetPreciseCodes(t *testing.T) {
	t.Parallel()
	d, _ := startCtrDaemon(t)
	ctx := ctxT(t)
	code := func(err error) codes.Code { return status.Code(err) }

	for name, change := range map[string]func(*runtimeapi.PodSandboxConfig){
		"relative log_directory": func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "relative/logs" },
		"65-byte hostname":       func(c *runtimeapi.PodSandboxConfig) { c.Hostname = strings.Repeat("h", 65) },
	} {
		cfg := podConfig("bad")
		change(cfg)
		id, err := d.Runtime.RunPodSandbox(ctx, cfg, "")
		if id != "" {
			_ = d.Runtime.RemovePodSandbox(ctx, id)
		}
		if code(err) != codes.InvalidArgument {
			t.Errorf("RunPodSandbox with a %s: %v; want InvalidArgument", name, err)
		}
	}

	pod, podCfg := ctrPod(t, d, "badctr")
	for name, change := range map[string]func(*runtimeapi.ContainerConfig){
		`log_path "."`:         func(c *runtimeapi.ContainerConfig) { c.LogPath = "." },
		`log_path "../x.log"`:  func(c *runtimeapi.ContainerConfig) { c.LogPath = "../x.log" },
		"pid namespace mode 9": func(c *runtimeapi.ContainerConfig) { c.Linux.SecurityContext.NamespaceOptions.Pid = 9 },
		"1-byte memory limit": func(c *runtimeapi.ContainerConfig) {
			c.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1}
		},
		"cpu_quota -5": func(c *runtimeapi.ContainerConfig) {
			c.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuQuota: -5}
		},
		`unified key "../x"`: func(c *runtimeapi.ContainerConfig) {
			c.Linux.Resources = &runtimeapi.LinuxContainerResources{Unified: map[string]string{"../../x": "1"}}
		},
		`hugepage size "../2MB"`: func(c *runtimeapi.ContainerConfig) {
			c.Linux.Resources = &runtimeapi.LinuxContainerResources{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "../2MB", Limit: 1 << 21}}}
		},
	} {
		cfg := shCfg("bad", "sleep 60")
		change(cfg)
		id, err := d.Runtime.CreateContainer(ctx, pod, cfg, podCfg)
		if id != "" {
			_ = d.Runtime.RemoveContainer(ctx, id)
		}
		if code(err) != codes.InvalidArgument {
			t.Errorf("CreateContainer with a %s: %v; want InvalidArgument", name, err)
		}
	}

	// The kubelet rotates a log whose directory was removed under it.
	logDir := t.TempDir()
	podCfg2 := podConfig("gonelogs")
	podCfg2.LogDirectory = logDir
	pod2 := runPod(t, d, podCfg2)
	id := runCtr(t, d, pod2, podCfg2, shCfg("c", "sleep 600"))
	if err := os.RemoveAll(logDir); err != nil {
		t.Fatal(err)
	}
	if err := d.Runtime.ReopenContainerLog(ctx, id); code(err) != codes.FailedPrecondition {
		t.Errorf("ReopenContainerLog after its directory was removed: %v; want FailedPrecondition", err)
	}
}

// An image whose config has an environment entry without "=": runc
// refuses such an entry, so it is dropped (as containerd does) and the
// container runs with the rest of the image's environment.
func TestImageEnvWithoutEquals(t *testing.T) {
	t.Parallel()
	d, ref := daemonWithImage(t, "badenv", func(c *v1.Config) { c.Env = append(c.Env, "NOEQUALS", "GOOD=yes") })
	pod, podCfg := ctrPod(t, d, "badenv")
	cfg := shCfg("c", `echo "GOOD=$GOOD NOEQUALS=${NOEQUALS-unset}"; exec sleep 600`)
	cfg.Image = spec(ref)
	id := createCtr(t, d, pod, podCfg, cfg)
	startCtr(t, d, id)
	waitLog(t, podCfg, cfg, []string{"GOOD=yes NOEQUALS=unset"}, nil)
}

// RemovePodSandbox racing CreateContainer: the outcome must be one of the
// serial orders. Either the create comes first, succeeds, and the removal
// removes its container; or the removal comes first and the create fails
// with NotFound or FailedPrecondition. Never a failed removal, nor a
// container left behind in a removed pod.
func TestRemovePodRacingCreateContainer(t *testing.T) {
	t.Parallel()
	raceBuild(t)
	d, _ := startCtrDaemon(t)
	ctx := ctxT(t)
	created, refused := 0, 0
	for i := range 12 {
		podCfg := podConfig(fmt.Sprintf("race%d", i))
		podCfg.LogDirectory = t.TempDir()
		pod := runPod(t, d, podCfg)
		var (
			wg        sync.WaitGroup
			id        string
			createErr error
			removeErr error
		)
		start := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			id, createErr = d.Runtime.CreateContainer(ctx, pod, shCfg("c", "sleep 600"), podCfg)
		}()
		go func() {
			defer wg.Done()
			<-start
			// Spread the removal over the create's steps.
			time.Sleep(time.Duration(i%6) * 15 * time.Millisecond)
			removeErr = d.Runtime.RemovePodSandbox(ctx, pod)
		}()
		close(start)
		wg.Wait()

		if removeErr != nil {
			t.Errorf("round %d: RemovePodSandbox racing CreateContainer: %v", i, removeErr)
		}
		switch c := status.Code(createErr); {
		case createErr == nil:
			created++
			if _, err := d.Runtime.ContainerStatus(ctx, id, false); status.Code(err) != codes.NotFound {
				t.Errorf("round %d: container %s created before the removal outlived its pod: ContainerStatus = %v", i, id, err)
				_ = d.Runtime.RemoveContainer(ctx, id)
			}
		case c == codes.NotFound || c == codes.FailedPrecondition:
			refused++
		default:
			t.Errorf("round %d: CreateContainer racing RemovePodSandbox: %v; want success, NotFound or FailedPrecondition", i, createErr)
		}
		if ctrs := d.ListCtrIDs(t, &runtimeapi.ContainerFilter{PodSandboxId: pod}); len(ctrs) != 0 {
			t.Errorf("round %d: containers left in the removed pod: %v", i, ctrs)
		}
		if pods, err := d.Runtime.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{Id: pod}); err != nil || len(pods) != 0 {
			t.Errorf("round %d: ListPodSandbox after the removal = %v, %v; want nothing", i, pods, err)
		}
	}
	t.Logf("%d creates came first, %d were refused", created, refused)
}

// zeros is an endless stdin, like /dev/zero.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// clientProxy relays TCP connections to the daemon's streaming server, so
// that a test can make a client vanish as a killed process does: its
// connections to the daemon reset, whatever the client library is doing.
type clientProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []*net.TCPConn
}

func startClientProxy(t *testing.T, target string) *clientProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &clientProxy{ln: ln}
	t.Cleanup(func() { ln.Close(); p.kill() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, out.(*net.TCPConn), in.(*net.TCPConn))
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	return p
}

// via rewrites a streaming URL to go through the proxy.
func (p *clientProxy) via(t *testing.T, streamURL string) string {
	t.Helper()
	u, err := url.Parse(streamURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

// kill resets every relayed connection, as the kernel does for a killed client.
func (p *clientProxy) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.SetLinger(0)
		c.Close()
	}
	p.conns = nil
}

// An exec whose command never reads its stdin, fed an endless stdin (crictl
// exec -i <ctr> sleep 4001 < /dev/zero), and whose client is then killed:
// the command and the daemon's helpers for it must go too. Before, the
// stdin copy blocked on the full pipe, the stream stopped reading the
// connection, and the disconnect was never seen.
func TestExecWithUnreadStdinEndsWithItsClient(t *testing.T) {
	t.Parallel()
	raceBuild(t)
	d, _ := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "stdin-flood")
	id := runCtr(t, d, pod, podCfg, shCfg("main", "exec sleep 1000"))
	for i, ws := range []bool{false, true} {
		proto := map[bool]string{false: "spdy", true: "websocket"}[ws]
		t.Run(proto, func(t *testing.T) {
			cmd := fmt.Sprintf("sleep %d", 4001+i)
			u := execURL(t, d, &runtimeapi.ExecRequest{ContainerId: id, Cmd: strings.Fields(cmd), Stdin: true, Stdout: true})
			pu, err := url.Parse(u)
			if err != nil {
				t.Fatal(err)
			}
			proxy := startClientProxy(t, pu.Host)
			fdsBefore := openFDs(t, d.Pid())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				_ = stream(ctx, t, proxy.via(t, u), ws, remotecommand.StreamOptions{Stdin: zeros{}, Stdout: io.Discard})
			}()
			procs := func() []string { return framework.ProcsMentioning(t, cmd, 0) }
			if !eventually(20*time.Second, func() bool { return len(procs()) > 0 }) {
				t.Fatalf("%s never ran", cmd)
			}
			time.Sleep(2 * time.Second) // the pipe and the stream's buffers fill up
			proxy.kill()
			if !eventually(30*time.Second, func() bool { return len(procs()) == 0 }) {
				t.Errorf("still running 30 s after the client was killed:\n%s", strings.Join(procs(), "\n"))
			}
			// The session's pipes, sockets and console go too.
			if !eventually(30*time.Second, func() bool { return openFDs(t, d.Pid()) <= fdsBefore }) {
				t.Errorf("the daemon has %d open files after the session; %d before it", openFDs(t, d.Pid()), fdsBefore)
			}
		})
	}
}

// openFDs is how many files process pid has open.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// rssBytes is process pid's resident set size.
func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			if _, err := fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb); err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// Eight ExecSync calls at once, each printing 100 MB on stdout and on
// stderr: every call's output is capped, and all of them together hold a
// bounded amount of memory (past it, output is cut, as past one call's
// cap; the exit codes are whole). Before, the daemon grew by hundreds of MB. The daemon here is the build
// without the race detector, whose shadow memory would blur the figure.
func TestExecSyncOutputIsBoundedAcrossCalls(t *testing.T) {
	// Not parallel: it measures the daemon's resident memory while eight
	// calls flood it, which the CPU and memory other tests take would blur.
	d := framework.StartDaemon(t, framework.Options{Binary: benchBinary, Args: []string{"--registries-conf", registriesConf}})
	cleanupPods(t, d)
	pull(t, d, framework.BusyboxImage, factsOf(t, framework.BusyboxImage))
	pod, podCfg := ctrPod(t, d, "execflood")
	id := runCtr(t, d, pod, podCfg, shCfg("main", "exec sleep 1000"))

	base := rssBytes(t, d.Pid())
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if r := rssBytes(t, d.Pid()); r > peak.Load() {
				peak.Store(r)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			stdout, stderr, err := d.Runtime.ExecSync(ctx, id, []string{"sh", "-c", "head -c 100000000 /dev/zero; head -c 100000000 /dev/zero >&2"}, 90*time.Second)
			if err == nil && len(stdout)+len(stderr) > 16<<20 {
				err = fmt.Errorf("%d bytes of output; want at most 16 MiB", len(stdout)+len(stderr))
			}
			errs[i] = err
		})
	}
	wg.Wait()
	close(stop)
	<-sampled
	for i, err := range errs {
		if err != nil {
			t.Errorf("ExecSync %d: %v", i, err)
		}
	}
	growth := peak.Load() - base
	t.Logf("daemon RSS %d MiB before, peak %d MiB during the calls (+%d MiB)", base>>20, peak.Load()>>20, growth>>20)
	if growth > 200<<20 {
		t.Errorf("the daemon grew by %d MiB for eight ExecSync calls; want their output held within a bounded budget", growth>>20)
	}
}
