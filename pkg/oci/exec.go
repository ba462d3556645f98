package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/helper"
	"github.com/cri-runtime/cri-runtime/pkg/proc"
	"github.com/cri-runtime/cri-runtime/pkg/safego"
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

	stdout := &cappedBuffer{max: MaxExecOutput, budget: execOutputBudget}
	stderr := &cappedBuffer{max: MaxExecOutput, budget: execOutputBudget}
	defer stdout.release()
	defer stderr.release()
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
	safego.Go(r.log, "wait for exec-sync", func() { done <- c.Wait() })

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
	killed := map[int]uint64{} // PID → its start time, to tell it from a reuse
	for round := 0; round < 5; round++ {
		roots := []int{c.Process.Pid}
		if pid, err := readPidFile(pidFile); err == nil {
			roots = append(roots, pid)
		}
		found := false
		for _, root := range roots {
			for _, p := range processTree(root) {
				if _, ok := killed[p]; !ok {
					killed[p], found = startTicks(p), true
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
		for started != 0 && startTicks(pid) == started && !reapedInContainer(pid) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// killWait bounds how long killExec waits for the processes it killed to be
// reaped by their parents (the helper, or the node's init for the orphans).
const killWait = 5 * time.Second

// reapedInContainer tells whether pid is a zombie whose parent lives in
// another PID namespace than ours: a grandchild of the command, orphaned
// to the container's init. Reaping it is that init's business (which may
// never do it, as `top` or `sleep` never do); waiting for it is no use.
func reapedInContainer(pid int) bool {
	st, err := proc.ReadStat(pid)
	if err != nil || st.State != 'Z' {
		return false
	}
	parentNS, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", st.PPID))
	if err != nil {
		return false
	}
	ourNS, err := os.Readlink("/proc/self/ns/pid")
	return err == nil && parentNS != ourNS
}

// startTicks identifies process pid (its start time), 0 once it is gone.
func startTicks(pid int) uint64 {
	st, err := proc.ReadStat(pid)
	if err != nil {
		return 0
	}
	return st.StartTicks
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

// The contract of the helper's "reap-exec" (pkg/helper), which ExecSync
// and Exec run: when runc itself failed, it exits ReapExecFailed and writes
// the reason on stderr after ReapExecPrefix; otherwise it exits with the
// command's code.
const (
	ReapExecFailed = helper.ReapExecFailed
	ReapExecPrefix = helper.ReapExecPrefix
)

// execOutputBudget bounds the memory the outputs of all ExecSync calls in
// flight hold together. Past it, output is discarded as past a call's own
// cap: eight calls printing 100 MB each must not take the daemon's memory
// with them. One call can still fill its response.
var execOutputBudget = &budget{free: maxExecResponse + 16<<20}

// budget is a pool of bytes that buffers take from as they grow.
type budget struct {
	mu   sync.Mutex
	free int
}

// take grants up to n bytes (maybe fewer, maybe none).
func (b *budget) take(n int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n = min(n, b.free)
	b.free -= n
	return n
}

func (b *budget) give(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.free += n
}

// outputChunk is how much a cappedBuffer takes from the budget at a time.
const outputChunk = 256 << 10

// cappedBuffer keeps the first max bytes written and discards the rest,
// without failing the writer. Its memory comes from a budget shared with
// the other buffers in flight, in chunks that are never copied while it
// grows; release gives it back. (It has no ReadFrom: io.Copy must go
// through Write and its cap.)
type cappedBuffer struct {
	max    int
	budget *budget // nil: unbounded but for max
	chunks [][]byte
	size   int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && b.size < b.max {
		last := len(b.chunks) - 1
		if last < 0 || len(b.chunks[last]) == cap(b.chunks[last]) {
			want := min(outputChunk, b.max-b.size)
			if b.budget != nil {
				want = b.budget.take(want)
			}
			if want == 0 {
				break // the budget is spent: discard
			}
			b.chunks = append(b.chunks, make([]byte, 0, want))
			last++
		}
		c := b.chunks[last]
		k := min(len(p), cap(c)-len(c), b.max-b.size)
		b.chunks[last] = append(c, p[:k]...)
		b.size += k
		p = p[k:]
	}
	return n, nil
}

// Bytes returns what was kept, in one slice.
func (b *cappedBuffer) Bytes() []byte {
	if len(b.chunks) == 1 {
		return b.chunks[0]
	}
	out := make([]byte, 0, b.size)
	for _, c := range b.chunks {
		out = append(out, c...)
	}
	return out
}

func (b *cappedBuffer) String() string { return string(b.Bytes()) }

// release returns the buffer's memory to its budget; the buffer is empty
// after.
func (b *cappedBuffer) release() {
	if b.budget != nil {
		for _, c := range b.chunks {
			b.budget.give(cap(c))
		}
	}
	b.chunks, b.size = nil, 0
}

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
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reopen the log of %s: its directory %s no longer exists: %w", id, filepath.Dir(logPath), errdefs.ErrFailedPrecondition)
	}
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
	safego.Go(nil, "watch for "+path, func() {
		readInotify(file, func(name string) bool {
			if name == filepath.Base(path) {
				close(created)
				return false
			}
			return true
		})
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
