package e2e

// What a host reboot does to the runtime's state: --state (volatile, on
// tmpfs on a real node) is gone with every process, mount and namespace,
// --root (and the image store in it) is kept. And a daemon killed in the
// middle of a pull starts again with nothing of that pull left.

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// simulateReboot kills the daemon and everything it started, takes down
// every mount under its state directory and in its store, and deletes the
// state directory, as a reboot with --state on tmpfs would.
func simulateReboot(t *testing.T, d *framework.Daemon, ctrPIDs []int) {
	t.Helper()
	if err := d.Stop(syscall.SIGKILL, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, pid := range ctrPIDs {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, p := range framework.ProcsMentioning(t, d.Dir, 0) {
		pid, _, _ := strings.Cut(p, ":")
		if n, err := parsePid(pid); err == nil {
			_ = syscall.Kill(n, syscall.SIGKILL)
		}
	}
	var points []string
	for _, m := range mountsUnder(t, d.Dir) {
		points = append(points, m.Point)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points))) // children first
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
			t.Logf("unmount %s: %v", p, err)
		}
	}
	if err := os.RemoveAll(d.State); err != nil {
		t.Fatal(err)
	}
}

func parsePid(s string) (int, error) {
	var n int
	for _, r := range strings.TrimSpace(s) {
		if r < '0' || r > '9' {
			return 0, os.ErrInvalid
		}
		n = n*10 + int(r-'0')
	}
	return n, nil
}

func TestReboot(t *testing.T) {
	t.Parallel()
	d, bb := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "reboot")
	running := runCtr(t, d, pod, podCfg, shCfg("running", "echo before; exec sleep 1000"))
	done := runCtr(t, d, pod, podCfg, shCfg("done", "exit 3"))
	d.WaitExited(t, done)
	waitLog(t, podCfg, shCfg("running", ""), []string{"before"}, nil)
	pid := runningPid(t, d, running)
	if l := leases(t, d.Root); len(l) != 1 {
		t.Fatalf("leases before the reboot: %v; want the pod's one", l)
	}

	simulateReboot(t, d, []int{pid})
	if err := d.Start(); err != nil {
		t.Fatalf("start after the reboot: %v\n%s", err, d.Logs())
	}

	if st := podStatus(t, d, pod, false).GetStatus(); st.GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("pod after the reboot: %v; want NOTREADY", st.GetState())
	}
	if l := leases(t, d.Root); len(l) != 0 {
		t.Errorf("leases after the reboot: %v; want the pod's released by CNI DEL from its recorded network", l)
	}
	if st := d.CtrStatus(t, running); st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 255 || st.Reason != "Unknown" || st.FinishedAt == 0 {
		t.Errorf("running container after the reboot: %v exit %d reason %q finished %d; want EXITED 255 Unknown with a finish time", st.State, st.ExitCode, st.Reason, st.FinishedAt)
	}
	if st := d.CtrStatus(t, done); st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 3 {
		t.Errorf("exited container after the reboot: %v exit %d; want EXITED 3, as before", st.State, st.ExitCode)
	}
	// Images are in --root: still there, and usable at once.
	mustStatus(t, d, framework.BusyboxImage, bb)
	if _, err := os.Stat(logFile(podCfg, shCfg("running", ""))); err != nil {
		t.Errorf("container log after the reboot: %v; want it kept", err)
	}

	// Everything can be removed, and a new pod runs.
	if err := d.Runtime.RemovePodSandbox(ctxT(t), pod); err != nil {
		t.Fatalf("RemovePodSandbox after the reboot: %v", err)
	}
	if got := storageIDs(t, d); len(got) != 0 {
		t.Errorf("storage containers after removing everything: %v", got)
	}
	checkNothingLeft(t, d)
	pod2, podCfg2 := ctrPod(t, d, "after-reboot")
	id := runCtr(t, d, pod2, podCfg2, shCfg("main", "exec sleep 1000"))
	mustExec(t, d.RawRuntime(t), id, "true")
}

// TestKilledPullLeavesNothing kills the daemon while an image's blobs are
// being downloaded: it starts again at once, with no partial image, layer
// or temporary file, and the same pull then succeeds.
func TestKilledPullLeavesNothing(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, framework.RegistryOptions{}, framework.BusyboxImage)
	d := startDaemonFor(t, reg)
	bb := factsOf(t, framework.BusyboxImage)
	reg.HoldBlobs()
	t.Cleanup(reg.ReleaseBlobs)
	pullDone := make(chan error, 1)
	go func() {
		_, err := d.Images.PullImage(context.Background(), spec(framework.BusyboxImage), nil, nil)
		pullDone <- err
	}()
	wctx, cancel := context.WithTimeout(ctxT(t), 30*time.Second)
	defer cancel()
	if err := reg.WaitHeldBlobs(wctx, 1); err != nil {
		t.Fatalf("no blob download began: %v", err)
	}
	if err := d.Stop(syscall.SIGKILL, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := <-pullDone; err == nil {
		t.Fatal("the pull succeeded although the daemon was killed during it")
	}
	reg.ReleaseBlobs()
	if err := d.Start(); err != nil {
		t.Fatalf("start after a killed pull: %v\n%s", err, d.Logs())
	}
	if imgs := listImages(t, d, ""); len(imgs) != 0 {
		t.Errorf("images after a killed pull: %v; want none", ids(imgs))
	}
	if entries, _ := os.ReadDir(d.Root + "/tmp"); len(entries) != 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("temporary files of the killed pull: %v", names)
	}
	pull(t, d, framework.BusyboxImage, bb)
	if imgs := listImages(t, d, ""); !slices.Equal(ids(imgs), []string{bb.id}) {
		t.Errorf("ListImages after the pull = %v; want %s", ids(imgs), bb.id)
	}
}

// TestInterruptedLayerWriteIsDiscarded: containers/storage flags a layer
// incomplete while writing it, and drops such layers when the store opens
// again. The test flags the image's layer as a crash mid-write would leave
// it: the daemon starts, the image that stood on the layer is gone (not
// broken: ImageStatus says nothing, so the kubelet pulls again), and the
// pull and a container from it work.
func TestInterruptedLayerWriteIsDiscarded(t *testing.T) {
	t.Parallel()
	d, bb := startCtrDaemon(t)
	if err := d.Stop(syscall.SIGKILL, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(d.Root, "storage", "overlay-layers", "layers.json")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var layers []map[string]any
	if err := json.Unmarshal(data, &layers); err != nil || len(layers) == 0 {
		t.Fatalf("layers.json: %v (%d layers)", err, len(layers))
	}
	layers[len(layers)-1]["flags"] = map[string]any{"incomplete": true}
	if data, err = json.Marshal(layers); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}

	if err := d.Start(); err != nil {
		t.Fatalf("start with an incomplete layer: %v\n%s", err, d.Logs())
	}
	if imgs := listImages(t, d, ""); len(imgs) != 0 {
		t.Errorf("images after the layer was dropped: %v; want none", ids(imgs))
	}
	if st := imageStatus(t, d, framework.BusyboxImage); st != nil {
		t.Errorf("ImageStatus of the image whose layer was dropped = %v; want none (so it is pulled again)", st.Id)
	}
	pull(t, d, framework.BusyboxImage, bb)
	pod, podCfg := ctrPod(t, d, "relayered")
	id := runCtr(t, d, pod, podCfg, shCfg("main", "exec sleep 1000"))
	mustExec(t, d.RawRuntime(t), id, "true")
}
