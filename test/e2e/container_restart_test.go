package e2e

// Containers outlive the daemon. Each runs under its own monitor, so a daemon
// that is killed (SIGKILL) or stopped (SIGTERM) takes no container with it; a
// container that exits while no daemon runs is found exited, with its code,
// times and log, by the next one, which can then stop and remove everything
// its predecessor made.

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

func TestRestartAfterKillKeepsContainers(t *testing.T) {
	t.Parallel()
	restartWithContainers(t, syscall.SIGKILL)
}
func TestRestartAfterTermKeepsContainers(t *testing.T) {
	t.Parallel()
	restartWithContainers(t, syscall.SIGTERM)
}

// restartWithContainers runs a pod with a long-running container a and a
// container b that exits 4 after 3 seconds, stops the daemon with sig before
// b exits, waits for b's exit, starts the daemon again and checks what it
// reports and that it can tear everything down.
func restartWithContainers(t *testing.T, sig syscall.Signal) {
	d, _ := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "restart")
	ip := podIP(t, d, pod)
	aCfg := shCfg("a", "echo a-up; exec sleep 600")
	bCfg := shCfg("b", "echo b-up; sleep 3; echo b-down >&2; exit 4")
	a := runCtr(t, d, pod, podCfg, aCfg)
	b := runCtr(t, d, pod, podCfg, bCfg)
	waitLog(t, podCfg, aCfg, []string{"a-up"}, nil)
	waitLog(t, podCfg, bCfg, []string{"b-up"}, nil)
	aPid, bPid := runningPid(t, d, a), runningPid(t, d, b)
	aSt, bSt := d.CtrStatus(t, a), d.CtrStatus(t, b)
	if bSt.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("b is %v before the daemon stops; the test needs it still running", bSt.State)
	}

	if err := d.Stop(sig, 30*time.Second); err != nil {
		t.Fatalf("stop the daemon with %v: %v", sig, err)
	}
	if err := d.ExitErr(); sig == syscall.SIGTERM && err != nil {
		t.Errorf("daemon exit after SIGTERM = %v; want 0", err)
	}
	if !exists("/proc/" + strconv.Itoa(aPid)) {
		t.Fatalf("a's process %d died with the daemon (%v)", aPid, sig)
	}
	if ps := framework.ProcsMentioning(t, a, 0); len(ps) == 0 {
		t.Errorf("no process (a's monitor) mentions a's ID %s after the daemon stopped", a)
	}
	// b exits while no daemon runs.
	if !eventually(20*time.Second, func() bool { return !exists("/proc/" + strconv.Itoa(bPid)) }) {
		t.Fatalf("b's process %d still there 20s after the daemon stopped; it should exit after 3s", bPid)
	}
	restartAt := time.Now()
	if err := d.Start(); err != nil {
		t.Fatalf("restart after %v: %v\n%s", sig, err, d.Logs())
	}

	got := d.CtrStatus(t, a)
	if got.Id != a || got.State != runtimeapi.ContainerState_CONTAINER_RUNNING || got.CreatedAt != aSt.CreatedAt ||
		got.StartedAt != aSt.StartedAt || got.FinishedAt != 0 {
		t.Errorf("a after restart: %s %v created %d started %d finished %d; want %s RUNNING created %d started %d finished 0",
			got.Id, got.State, got.CreatedAt, got.StartedAt, got.FinishedAt, a, aSt.CreatedAt, aSt.StartedAt)
	}
	if pid := framework.InfoPid(d.CtrInfo(t, a)); pid != aPid || !exists("/proc/"+strconv.Itoa(aPid)) {
		t.Errorf("a after restart: verbose pid %d (process %d alive: %v); want the same live process %d", pid, aPid, exists("/proc/"+strconv.Itoa(aPid)), aPid)
	}
	gotB := d.CtrStatus(t, b)
	if gotB.State != runtimeapi.ContainerState_CONTAINER_EXITED || gotB.ExitCode != 4 || gotB.Reason != "Error" {
		t.Errorf("b after restart: %v exit %d reason %q; want EXITED 4 Error", gotB.State, gotB.ExitCode, gotB.Reason)
	}
	if gotB.CreatedAt != bSt.CreatedAt || gotB.StartedAt != bSt.StartedAt {
		t.Errorf("b after restart: created %d started %d; want unchanged %d %d", gotB.CreatedAt, gotB.StartedAt, bSt.CreatedAt, bSt.StartedAt)
	}
	// It slept 3s after starting, and finished while the daemon was down.
	if fin := gotB.FinishedAt; fin < gotB.StartedAt+int64(2500*time.Millisecond) || fin > restartAt.Add(time.Second).UnixNano() {
		t.Errorf("b's FinishedAt %s; want at least 2.5s after its StartedAt %s and before the restart at %s",
			time.Unix(0, fin).Format(time.StampMilli), time.Unix(0, gotB.StartedAt).Format(time.StampMilli), restartAt.Format(time.StampMilli))
	}
	waitLog(t, podCfg, aCfg, []string{"a-up"}, nil)
	waitLog(t, podCfg, bCfg, []string{"b-up"}, []string{"b-down"})
	if ids := d.ListCtrIDs(t, nil); !slices.Equal(ids, sorted(a, b)) {
		t.Errorf("containers listed after restart: %v; want %v", ids, sorted(a, b))
	}
	running := &runtimeapi.ContainerFilter{State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}}
	if ids := d.ListCtrIDs(t, running); !slices.Equal(ids, []string{a}) {
		t.Errorf("running containers after restart: %v; want only a %s", ids, a)
	}

	// The new daemon runs commands in, and rotates the log of, the
	// container it found running, and refuses the exited one.
	rc := d.RawRuntime(t)
	if resp, _, err := execRaw(t, rc, a, 10, time.Minute, "sh", "-c", "echo in-a; exit 3"); err != nil || string(resp.Stdout) != "in-a\n" || resp.ExitCode != 3 {
		t.Errorf("ExecSync in a after restart = %v, stdout %q exit %d; want \"in-a\\n\" 3", err, resp.GetStdout(), resp.GetExitCode())
	}
	if _, _, err := execRaw(t, rc, b, 10, time.Minute, "true"); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("ExecSync in exited b after restart = %v; want FailedPrecondition", err)
	}
	if err := d.Runtime.ReopenContainerLog(ctxT(t), a); err != nil {
		t.Errorf("ReopenContainerLog(a) after restart: %v", err)
	}

	// The new daemon stops and removes what the old one started.
	stopCtr(t, d, a, 2)
	if !eventually(10*time.Second, func() bool { return !exists("/proc/" + strconv.Itoa(aPid)) }) {
		t.Errorf("a's process %d still there after StopContainer on the restarted daemon", aPid)
	}
	scs := map[string]*framework.StorageContainer{a: storageOf(t, d, a), b: storageOf(t, d, b)}
	for _, id := range []string{a, b} {
		if err := d.Runtime.RemoveContainer(ctxT(t), id); err != nil {
			t.Errorf("RemoveContainer(%s) on the restarted daemon: %v", id, err)
		}
		checkCtrGone(t, d, id, scs[id])
	}
	if err := d.Runtime.RemovePodSandbox(ctxT(t), pod); err != nil {
		t.Fatalf("RemovePodSandbox on the restarted daemon: %v", err)
	}
	checkGone(t, d, pod, ip)
	checkNothingLeft(t, d)
}

// checkNothingLeft checks that no process (monitor, runtime) other than the
// daemon mentions its directories and that nothing is mounted in its state
// directory or its store, but for the bind mount of the store's driver home
// on itself, which containers/storage keeps.
func checkNothingLeft(t *testing.T, d *framework.Daemon) {
	t.Helper()
	var ps []string
	if !eventually(10*time.Second, func() bool { ps = framework.ProcsMentioning(t, d.Dir, d.Pid()); return len(ps) == 0 }) {
		t.Errorf("processes left after everything was removed: %q", ps)
	}
	if ms := mountsUnder(t, d.State); len(ms) != 0 {
		t.Errorf("mounts left under the state directory: %v", ms)
	}
	for _, m := range mountsUnder(t, filepath.Join(d.Root, "storage")) {
		if m.FSType == "overlay" || !strings.HasSuffix(m.Point, "/storage/overlay") {
			t.Errorf("mount left in the store: %v", m)
		}
	}
}

// TestMonitorInPodCgroup: a container's monitor (conmon, the container's
// parent) lives in its pod's cgroup, in the monitors' leaf, in every
// hierarchy the daemon places it in, and never in the daemon's own: a
// restart of the daemon's service must not take it along. It is placed
// while "runc create" runs (pkg/oci, Create).
func TestMonitorInPodCgroup(t *testing.T) {
	t.Parallel()
	d, _ := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "monitor")
	for _, name := range []string{"a", "b"} { // the leaf exists for the second
		ctr := runCtr(t, d, pod, podCfg, shCfg(name, "exec sleep 600"))
		monitor := parentOf(t, runningPid(t, d, ctr))
		if comm := strings.TrimSpace(readFile(t, "/proc/"+strconv.Itoa(monitor)+"/comm")); comm != "conmon" {
			t.Fatalf("%s's parent %d is %q; want conmon", name, monitor, comm)
		}
		own := cgroupOf(t, d.Pid(), "memory")
		got := cgroupOf(t, monitor, "memory")
		if !strings.HasSuffix(got, "/crirt-conmon") || got == own {
			t.Errorf("%s's conmon is in memory cgroup %q (the daemon's: %q); want the pod's crirt-conmon leaf", name, got, own)
		}
	}
}

// parentOf is pid's parent process.
func parentOf(t *testing.T, pid int) int {
	t.Helper()
	stat := readFile(t, "/proc/"+strconv.Itoa(pid)+"/stat")
	f := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatalf("/proc/%d/stat: %q", pid, stat)
	}
	return ppid
}

// cgroupOf is pid's cgroup in the v1 hierarchy of controller, or its v2
// cgroup.
func cgroupOf(t *testing.T, pid int, controller string) string {
	t.Helper()
	var unified string
	for _, l := range strings.Split(readFile(t, "/proc/"+strconv.Itoa(pid)+"/cgroup"), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		if slices.Contains(strings.Split(f[1], ","), controller) {
			return f[2]
		}
		if f[0] == "0" {
			unified = f[2]
		}
	}
	return unified
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
