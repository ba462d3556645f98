package e2e

// What the kubelet does to a running container besides starting and
// stopping it: ExecSync (probes, kubectl exec without a terminal),
// ReopenContainerLog (log rotation) and UpdateContainerResources (in-place
// resize). ExecSync is checked through a raw gRPC client, which sees the
// exit code and the DeadlineExceeded code that the kubelet's client folds
// into Go errors, and through the kubelet's client for what it makes of them.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"
	utilexec "k8s.io/utils/exec"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// execRaw runs cmd in container id through the raw client; the call itself
// may take up to callLimit, so that a timeout seen is the daemon's.
func execRaw(t *testing.T, rc runtimeapi.RuntimeServiceClient, id string, timeout int64, callLimit time.Duration, cmd ...string) (*runtimeapi.ExecSyncResponse, time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callLimit)
	defer cancel()
	start := time.Now()
	resp, err := rc.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: timeout})
	return resp, time.Since(start), err
}

// mustExec is execRaw for a command that must run and exit 0; it returns stdout.
func mustExec(t *testing.T, rc runtimeapi.RuntimeServiceClient, id string, cmd ...string) string {
	t.Helper()
	resp, took, err := execRaw(t, rc, id, 0, time.Minute, cmd...)
	if err != nil || resp.ExitCode != 0 {
		t.Fatalf("ExecSync(%q) after %v = %v, exit %d, stderr %q; want exit 0", cmd, took, err, resp.GetExitCode(), resp.GetStderr())
	}
	return string(resp.Stdout)
}

// procsInCtr lists the command lines of the processes, seen from the host,
// that share the PID namespace of the container's main process pid.
func procsInCtr(t *testing.T, pid int) []string {
	t.Helper()
	var out []string
	for _, p := range pidsInNamespace(nsInode(t, "/proc/"+strconv.Itoa(pid)+"/ns/pid")) {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline")
		out = append(out, strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " ")))
	}
	return out
}

func TestExecSync(t *testing.T) {
	t.Parallel()
	d, _ := startCtrDaemon(t)
	rc := d.RawRuntime(t)
	pod, podCfg := ctrPod(t, d, "exec")
	cfg := shCfg("main", "exec sleep 1000")
	cfg.Envs = []*runtimeapi.KeyValue{{Key: "MYVAR", Value: []byte("from-create")}}
	cfg.WorkingDir = "/etc"
	cfg.Linux.SecurityContext.RunAsUser = &runtimeapi.Int64Value{Value: 1234}
	id := runCtr(t, d, pod, podCfg, cfg)
	pid := runningPid(t, d, id)
	if s := readTrimmed(t, "/proc/"+strconv.Itoa(pid)+"/status"); !strings.Contains(s, "\nUid:\t1234\t") {
		t.Fatalf("main process %d does not run as uid 1234 (RunAsUser); the exec checks below need it:\n%s", pid, s)
	}

	t.Run("user env dir namespaces cgroup", func(t *testing.T) {
		out := mustExec(t, rc, id, "sh", "-c", `id -u; echo "$MYVAR"; pwd; for n in net pid mnt ipc uts; do readlink /proc/self/ns/$n; done`)
		want := "1234\nfrom-create\n/etc\n"
		for _, n := range []string{"net", "pid", "mnt", "ipc", "uts"} {
			link, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/" + n)
			if err != nil {
				t.Fatal(err)
			}
			want += link + "\n"
		}
		if out != want {
			t.Errorf("exec stdout:\n%s\nwant the container's uid, env, working dir and namespaces (those of its process %d):\n%s", out, pid, want)
		}
		// Seen from inside, pid 1 is the main process: same cgroups.
		if self, main := mustExec(t, rc, id, "cat", "/proc/self/cgroup"), mustExec(t, rc, id, "cat", "/proc/1/cgroup"); self != main {
			t.Errorf("exec'd process cgroups:\n%s\nwant those of the container's main process:\n%s", self, main)
		}
	})
	t.Run("exit code and streams", func(t *testing.T) {
		cmd := []string{"sh", "-c", "echo out; echo err >&2; exit 7"}
		resp, _, err := execRaw(t, rc, id, 0, time.Minute, cmd...)
		if err != nil || string(resp.Stdout) != "out\n" || string(resp.Stderr) != "err\n" || resp.ExitCode != 7 {
			t.Errorf("ExecSync = %v, stdout %q stderr %q exit %d; want no error, \"out\\n\" \"err\\n\" 7", err, resp.GetStdout(), resp.GetStderr(), resp.GetExitCode())
		}
		// The kubelet's client reports the code as an exec.ExitError.
		stdout, stderr, err := d.Runtime.ExecSync(ctxT(t), id, cmd, 0)
		var ee utilexec.ExitError
		if !errors.As(err, &ee) || ee.ExitStatus() != 7 || string(stdout) != "out\n" || string(stderr) != "err\n" {
			t.Errorf("cri-client ExecSync = %q %q %v; want out, err and an ExitError with status 7", stdout, stderr, err)
		}
		if out := mustExec(t, rc, id, "true"); out != "" {
			t.Errorf("ExecSync(true) stdout %q; want none", out)
		}
	})
	t.Run("timeout kills the command", func(t *testing.T) {
		// Directly, and as the child of a shell that waits for it.
		for _, cmd := range [][]string{{"sleep", "30"}, {"sh", "-c", "sleep 30; echo never"}} {
			resp, took, err := execRaw(t, rc, id, 2, time.Minute, cmd...)
			if status.Code(err) != codes.DeadlineExceeded || took < 1500*time.Millisecond || took > 20*time.Second {
				t.Errorf("ExecSync(%q, timeout 2) = %v (resp %v) after %v; want DeadlineExceeded after about 2s", cmd, err, resp, took)
			}
		}
		// No live sleep 30 is left. (The shell's sleep, orphaned to the
		// container's init, which never reaps, stays a zombie: any
		// runtime's would.)
		for _, c := range procsInCtr(t, pid) {
			if c == "sleep 30" {
				t.Errorf("processes in the container after the timeouts: %q; want no sleep 30", procsInCtr(t, pid))
			}
		}
		// A command killed alone is gone the moment the call returns,
		// reaped too: critest's next exec runs pgrep, which lists zombies.
		before := len(procsInCtr(t, pid))
		if _, took, err := execRaw(t, rc, id, 1, time.Minute, "sleep", "31"); status.Code(err) != codes.DeadlineExceeded || took > 20*time.Second {
			t.Errorf("ExecSync(sleep 31, timeout 1) = %v after %v; want DeadlineExceeded", err, took)
		}
		if left := procsInCtr(t, pid); len(left) != before {
			t.Errorf("processes in the container right after the timeout: %q; want the %d there before it, not even a zombie of sleep 31", left, before)
		}
		start := time.Now()
		_, _, err := d.Runtime.ExecSync(ctxT(t), id, []string{"sleep", "30"}, 2*time.Second)
		if !errors.Is(err, remote.ErrCommandTimedOut) || time.Since(start) > 20*time.Second {
			t.Errorf("cri-client ExecSync(sleep 30, 2s) = %v after %v; want ErrCommandTimedOut after about 2s", err, time.Since(start))
		}
	})
	t.Run("background child does not hold the call", func(t *testing.T) {
		resp, took, err := execRaw(t, rc, id, 0, 25*time.Second, "sh", "-c", "sleep 29 & echo started")
		if err != nil || string(resp.Stdout) != "started\n" || resp.ExitCode != 0 || took > 10*time.Second {
			t.Errorf("ExecSync(sleep 29 & echo started) = %v, stdout %q exit %d after %v; want \"started\\n\" 0 at once", err, resp.GetStdout(), resp.GetExitCode(), took)
		}
	})
	t.Run("output capped to what the kubelet can receive", func(t *testing.T) {
		// Each stream is capped at 16 MiB, and both together to fit the
		// kubelet client's 16 MiB messages (with 64 KiB to spare).
		const want = 16<<20 - 64<<10
		resp, took, err := execRaw(t, rc, id, 30, time.Minute, "head", "-c", "20000000", "/dev/zero")
		if err != nil {
			t.Fatalf("ExecSync(head -c 20000000 /dev/zero) = %v after %v; want truncated output and no error", err, took)
		}
		if len(resp.Stdout) != want || bytes.IndexFunc(resp.Stdout, func(r rune) bool { return r != 0 }) >= 0 {
			t.Errorf("stdout: %d bytes; want exactly %d zero bytes", len(resp.Stdout), want)
		}
		stdout, _, err := d.Runtime.ExecSync(ctxT(t), id, []string{"head", "-c", "20000000", "/dev/zero"}, 30*time.Second)
		if err != nil || len(stdout) != want {
			t.Fatalf("through the kubelet's client: %d bytes, %v; want %d bytes and no error", len(stdout), err, want)
		}
	})
	t.Run("not running or unknown", func(t *testing.T) {
		done := runCtr(t, d, pod, podCfg, shCfg("done", "true"))
		d.WaitExited(t, done)
		created := createCtr(t, d, pod, podCfg, shCfg("created", "true"))
		for _, tc := range []struct {
			what, id string
			cmd      []string
			code     codes.Code
		}{
			{"exited container", done, []string{"true"}, codes.FailedPrecondition},
			{"unknown container", strings.Repeat("9a", 32), []string{"true"}, codes.NotFound},
			{"empty command", id, nil, codes.InvalidArgument},
		} {
			if _, _, err := execRaw(t, rc, tc.id, 0, time.Minute, tc.cmd...); status.Code(err) != tc.code {
				t.Errorf("ExecSync on %s = %v; want %v", tc.what, err, tc.code)
			}
		}
		// A missing program is a failure, as an error or an exit code.
		if resp, _, err := execRaw(t, rc, id, 0, time.Minute, "/no/such/program"); err == nil && resp.ExitCode == 0 {
			t.Errorf("ExecSync(/no/such/program) succeeded with exit 0")
		} else {
			t.Logf("ExecSync(/no/such/program): error %v, exit code %d", err, resp.GetExitCode())
		}
		if _, _, err := execRaw(t, rc, created, 0, time.Minute, "true"); err == nil {
			t.Errorf("ExecSync on a created, never started container succeeded; want an error")
		} else {
			t.Logf("ExecSync on a created container: %v", err)
		}
	})
}

// ticks counts the stdout "tick" lines of a CRI log; a malformed log fails.
func ticks(t *testing.T, path string) int {
	t.Helper()
	// A read may catch the monitor half-way through a line: look again.
	var lines []framework.LogLine
	var err error
	if !eventually(2*time.Second, func() bool { lines, err = framework.ReadCRILog(path); return err == nil }) {
		t.Fatalf("log %s: %v", path, err)
	}
	n := 0
	for _, l := range framework.Joined(lines, "stdout") {
		if l != "tick" {
			t.Fatalf("log %s: line %q; want only tick", path, l)
		}
		n++
	}
	return n
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestReopenContainerLog(t *testing.T) {
	t.Parallel()
	d, _ := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "reopen")
	cfg := shCfg("ticker", "while true; do echo tick; sleep 0.2; done")
	id := runCtr(t, d, pod, podCfg, cfg)
	path := logFile(podCfg, cfg)
	rotated := path + ".1"
	if !eventually(10*time.Second, func() bool { return ticks(t, path) >= 2 }) {
		t.Fatalf("no ticks in %s after 10s", path)
	}
	// The kubelet's rotation: rename the file away, then ask for a new one.
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	n := ticks(t, rotated)
	if !eventually(10*time.Second, func() bool { return ticks(t, rotated) > n }) {
		t.Fatalf("the monitor stopped writing to the renamed log before ReopenContainerLog")
	}
	if err := d.Runtime.ReopenContainerLog(ctxT(t), id); err != nil {
		t.Fatalf("ReopenContainerLog: %v", err)
	}
	reopened := time.Now()
	if !exists(path) {
		eventually(10*time.Second, func() bool { return exists(path) })
		t.Errorf("ReopenContainerLog returned before %s was created again (the kubelet looks at it right after); it appeared %v later", path, time.Since(reopened))
	}
	if !eventually(10*time.Second, func() bool { return exists(path) && ticks(t, path) >= 2 }) {
		t.Fatalf("after ReopenContainerLog, %s has %d ticks after 10s; want new output there", path, ticks(t, path))
	}
	// Once the new file is in use, the old one no longer grows.
	oldSize, now := fileSize(t, rotated), ticks(t, path)
	if !eventually(10*time.Second, func() bool { return ticks(t, path) >= now+3 }) {
		t.Fatalf("%s stopped growing", path)
	}
	if fileSize(t, rotated) != oldSize {
		t.Errorf("%s grew from %d to %d bytes after the reopen; want output only in the new file", rotated, oldSize, fileSize(t, rotated))
	}
	ticks(t, rotated) // still a well-formed log
	if st := d.CtrStatus(t, id); st.LogPath != path || st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("after reopen: LogPath %q state %v; want %q RUNNING", st.LogPath, st.State, path)
	}

	if err := d.Runtime.ReopenContainerLog(ctxT(t), strings.Repeat("7b", 32)); !isNotFound(err) {
		t.Errorf("ReopenContainerLog(unknown) = %v; want NotFound", err)
	}
	if err := d.Runtime.StopContainer(ctxT(t), id, 0); err != nil {
		t.Fatal(err)
	}
	if err := d.Runtime.ReopenContainerLog(ctxT(t), id); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("ReopenContainerLog(stopped container) = %v; want FailedPrecondition", err)
	}
}

func TestUpdateContainerResources(t *testing.T) {
	t.Parallel()
	d, _ := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "update")
	id := runCtr(t, d, pod, podCfg, shCfg("main", "exec sleep 1000"))
	pid := runningPid(t, d, id)
	v2 := framework.CgroupV2() // make test-vm
	read := func(controller, file string) string {
		var v string
		var err error
		if v2 {
			v, err = framework.CgroupV2File(pid, file)
		} else {
			v, err = framework.CgroupV1File(pid, controller, file)
		}
		if err != nil {
			t.Fatalf("cgroup of container process %d: %v", pid, err)
		}
		return v
	}
	memLimit := "memory.limit_in_bytes"
	if v2 {
		memLimit = "memory.max"
	}
	t.Logf("cgroups of the container: %v, memory limit before %s", func() any { p, _ := framework.CgroupPaths(pid); return p }(), read("memory", memLimit))
	for _, r := range []*runtimeapi.LinuxContainerResources{
		{MemoryLimitInBytes: 64 << 20, CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512},
		{MemoryLimitInBytes: 128 << 20, CpuPeriod: 50000, CpuQuota: 20000, CpuShares: 256},
	} {
		if err := d.Runtime.UpdateContainerResources(ctxT(t), id, &runtimeapi.ContainerResources{Linux: r}); err != nil {
			t.Fatalf("UpdateContainerResources(%v): %v", r, err)
		}
		checks := []struct {
			controller, file string
			want             string
		}{
			{"memory", "memory.limit_in_bytes", strconv.FormatInt(r.MemoryLimitInBytes, 10)},
			{"cpu", "cpu.cfs_period_us", strconv.FormatInt(r.CpuPeriod, 10)},
			{"cpu", "cpu.cfs_quota_us", strconv.FormatInt(r.CpuQuota, 10)},
			{"cpu", "cpu.shares", strconv.FormatInt(r.CpuShares, 10)},
		}
		if v2 {
			checks = []struct {
				controller, file string
				want             string
			}{
				{"memory", "memory.max", strconv.FormatInt(r.MemoryLimitInBytes, 10)},
				{"cpu", "cpu.max", fmt.Sprintf("%d %d", r.CpuQuota, r.CpuPeriod)},
				// runc's conversion of shares to a weight.
				{"cpu", "cpu.weight", strconv.FormatUint(cgroups.ConvertCPUSharesToCgroupV2Value(uint64(r.CpuShares)), 10)},
			}
		}
		for _, c := range checks {
			if got := read(c.controller, c.file); got != c.want {
				t.Errorf("after UpdateContainerResources(%v): %s = %s; want %s", r, c.file, got, c.want)
			}
		}
	}
	st, err := d.Runtime.ContainerStatus(ctxT(t), id, true)
	if err != nil {
		t.Fatal(err)
	}
	// The kubelet's in-place resize reads the limits back from the status.
	if res := st.GetStatus().GetResources().GetLinux(); res.GetMemoryLimitInBytes() != 128<<20 || res.GetCpuQuota() != 20000 || res.GetCpuPeriod() != 50000 || res.GetCpuShares() != 256 {
		t.Errorf("status resources after the updates = %v; want memory 128 MiB, quota 20000/50000, shares 256", res)
	}
	if got := runningPid(t, d, id); got != pid || d.CtrStatus(t, id).State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("after updates: pid %d state %v; want the same process %d, RUNNING", got, d.CtrStatus(t, id).State, pid)
	}
	if err := d.Runtime.StopContainer(ctxT(t), id, 0); err != nil {
		t.Fatal(err)
	}
	err = d.Runtime.UpdateContainerResources(ctxT(t), id, &runtimeapi.ContainerResources{Linux: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 32 << 20}})
	t.Logf("UpdateContainerResources on an exited container: %v (code %v)", err, status.Code(err))
	if err := d.Runtime.UpdateContainerResources(ctxT(t), strings.Repeat("5e", 32), &runtimeapi.ContainerResources{Linux: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20}}); !isNotFound(err) {
		t.Errorf("UpdateContainerResources(unknown) = %v; want NotFound", err)
	}
}
