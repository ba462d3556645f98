package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// MaxExecOutput caps each captured stream of ExecSync, as the kubelet's
// exec probes expect runtimes to do.
const MaxExecOutput = 16 << 20

// maxExecResponse bounds both streams together: the kubelet's CRI client
// accepts messages of 16 MiB, so a larger response would reach it as an
// error instead of as truncated output.
const maxExecResponse = 16<<20 - 64<<10

// pipeGrace bounds how long ExecSync keeps reading after the command
// exited: a background child that inherited stdout must not hold it forever.
const pipeGrace = time.Second

// ExecResult is the outcome of ExecSync.
type ExecResult struct {
	Stdout, Stderr []byte
	ExitCode       int
}

// ExecSync runs cmd in the container, as its process runs (same user,
// environment, working directory, namespaces and cgroup, since runc exec
// starts from the container's own process spec), and collects its output.
// When timeout (if non-zero) passes first, the command and everything it
// started are killed and the error is DeadlineExceeded.
func (r *Runtime) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (*ExecResult, error) {
	pidFile, err := r.execPidFile(id)
	if err != nil {
		return nil, err
	}
	defer os.Remove(pidFile)

	stdout, stderr := &cappedBuffer{max: MaxExecOutput}, &cappedBuffer{max: MaxExecOutput}
	// runc exec waits for every process the command leaves behind; run it
	// detached under our reap-exec helper, which waits for the command only.
	args := append(append(append([]string{"reap-exec", pidFile, r.opts.Runc}, r.runcGlobal()...), "exec", "--detach", "--pid-file", pidFile, id), cmd...)
	c := exec.Command(r.opts.Helper, args...)
	c.Stdout, c.Stderr = stdout, stderr
	c.WaitDelay = pipeGrace
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("exec in container %s: %w", id, err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()

	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case err = <-done:
	case <-expired:
		r.killExec(pidFile, c)
		<-done
		return nil, fmt.Errorf("exec %q in container %s did not finish within %v; killed it: %w", strings.Join(cmd, " "), id, timeout, context.DeadlineExceeded)
	case <-ctx.Done():
		r.killExec(pidFile, c)
		<-done
		return nil, ctx.Err()
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil, errors.Is(err, exec.ErrWaitDelay):
	case errors.As(err, &exitErr):
		if msg := stderr.String(); exitErr.ExitCode() == ReapExecFailed && strings.Contains(msg, ReapExecPrefix) {
			// runc itself failed (e.g. the program is missing), not the command.
			return nil, execFailed(id, msg, nil)
		}
	default:
		return nil, fmt.Errorf("exec in container %s: %w", id, err)
	}
	out, errOut := stdout.Bytes(), stderr.Bytes()
	if len(out)+len(errOut) > maxExecResponse { // keep stdout, then what fits of stderr
		out = out[:min(len(out), maxExecResponse)]
		errOut = errOut[:maxExecResponse-len(out)]
	}
	return &ExecResult{Stdout: out, Stderr: errOut, ExitCode: c.ProcessState.ExitCode()}, nil
}

// execPidFile makes the file runc exec writes the command's PID to, in the
// container's bundle; a container without one is NotFound.
func (r *Runtime) execPidFile(id string) (string, error) {
	f, err := os.CreateTemp(r.BundleDir(id), "exec-*.pid")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("container %s: %w", id, errdefs.ErrNotFound)
		}
		return "", err
	}
	f.Close()
	return f.Name(), nil
}

// killExec kills the exec'd process and every process it started, and the
// helper and runc that started it. It walks the trees under the helper
// (runc, and the command while runc is still there or once the helper has
// become its parent) and under the PID runc wrote, if it has written it yet,
// and goes round again until nothing new appears: a command cut short at
// its very start must not survive its helper. It returns once every process
// it killed is gone, reaped included (bounded by killWait): the caller's
// next exec must not find the command it was told is dead, not even as a
// zombie.
func (r *Runtime) killExec(pidFile string, c *exec.Cmd) {
	killed := map[int]string{} // PID → its start time, to tell it from a reuse
	for round := 0; round < 5; round++ {
		roots := []int{c.Process.Pid}
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				roots = append(roots, pid)
			}
		}
		found := false
		for _, root := range roots {
			for _, p := range processTree(root) {
				if _, ok := killed[p]; !ok {
					killed[p], found = startTime(p), true
					_ = syscall.Kill(p, syscall.SIGKILL)
				}
			}
		}
		if !found {
			break
		}
		time.Sleep(10 * time.Millisecond) // let a fork in flight show up
	}
	deadline := time.Now().Add(killWait)
	for pid, started := range killed {
		for started != "" && startTime(pid) == started && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// killWait bounds how long killExec waits for the processes it killed to be
// reaped by their parents (the helper, or init for the orphans).
const killWait = 5 * time.Second

// startTime is field 22 of /proc/<pid>/stat, the process's start time in
// clock ticks since boot, or "" once the process is gone (reaped).
func startTime(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name (field 2) may hold spaces; the fields after it don't.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		if f := strings.Fields(s[i+1:]); len(f) > 19 {
			return f[19]
		}
	}
	return ""
}

// processTree lists pid and its descendants.
func processTree(pid int) []int {
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", out[i]))
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				if child, err := strconv.Atoi(f); err == nil {
					out = append(out, child)
				}
			}
		}
	}
	return out
}

// The contract of "cri-runtime reap-exec" (pkg/daemon), which ExecSync runs:
// when runc itself failed, it exits ReapExecFailed and writes the reason on
// stderr after ReapExecPrefix; otherwise it exits with the command's code.
const (
	ReapExecFailed = 125
	ReapExecPrefix = "cri-runtime reap-exec: "
)

// cappedBuffer keeps the first max bytes written and discards the rest,
// without failing the writer. (The buffer is a field, not embedded: an
// embedded bytes.Buffer's ReadFrom would let io.Copy bypass the cap.)
type cappedBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *cappedBuffer) Bytes() []byte  { return b.buf.Bytes() }
func (b *cappedBuffer) String() string { return b.buf.String() }

// reopenWait bounds how long ReopenLog waits for conmon to create the new
// log file.
const reopenWait = 5 * time.Second

// ReopenLog asks the container's conmon to reopen its log file at logPath,
// after the kubelet has rotated it (conmon's control fifo: event 2, reopen
// logs), and returns once the new file exists: the kubelet looks at it
// right after. The wait is an inotify watch on the log's directory.
func (r *Runtime) ReopenLog(id, logPath string) error {
	f, err := os.OpenFile(filepath.Join(r.BundleDir(id), "ctl"), os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENXIO) {
			return fmt.Errorf("container %s has no running monitor: %w", id, errdefs.ErrFailedPrecondition)
		}
		return fmt.Errorf("open control fifo of %s: %w", id, err)
	}
	defer f.Close()
	// Watch before asking, so that the creation cannot be missed.
	created, stop, err := watchCreate(logPath)
	if err != nil {
		return err
	}
	defer stop()
	if _, err := fmt.Fprintf(f, "%d %d %d\n", 2, 0, 0); err != nil {
		return fmt.Errorf("ask conmon to reopen the log of %s: %w", id, err)
	}
	if _, err := os.Stat(logPath); err == nil {
		return nil // not rotated away, or already back
	}
	select {
	case <-created:
		return nil
	case <-time.After(reopenWait):
		return fmt.Errorf("conmon did not create %s again within %v", logPath, reopenWait)
	}
}

// watchCreate reports, on the returned channel, when path is created (or
// moved into place). stop releases the watch.
func watchCreate(path string) (<-chan struct{}, func(), error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, nil, fmt.Errorf("inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, filepath.Dir(path), unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("watch %s: %w", filepath.Dir(path), err)
	}
	file := os.NewFile(uintptr(fd), "inotify") // non-blocking: Close wakes the reader
	created := make(chan struct{})
	go readInotify(file, func(name string) bool {
		if name == filepath.Base(path) {
			close(created)
			return false
		}
		return true
	})
	return created, func() { file.Close() }, nil
}

// Update applies new resource limits to a running container's cgroup.
func (r *Runtime) Update(ctx context.Context, id string, res *specs.LinuxResources) error {
	data, err := json.Marshal(res)
	if err != nil {
		return err
	}
	c := exec.CommandContext(ctx, r.opts.Runc, append(r.runcGlobal(), "update", "--resources", "-", id)...)
	c.Stdin = bytes.NewReader(data)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "does not exist") {
			return fmt.Errorf("runc update %s: %s: %w", id, msg, errdefs.ErrNotFound)
		}
		return fmt.Errorf("runc update %s: %w: %s", id, err, msg)
	}
	return nil
}
