package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cri-runtime/cri-runtime/pkg/cleanup"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/safego"
)

// RuntimeOptions say where the OCI runtime and the monitor are and where
// they keep their state.
type RuntimeOptions struct {
	Runc, Conmon string // resolved binaries
	// Helper is cri-runtime-helper (or the daemon's own binary), run as
	// "Helper reap-exec ..." to wait for an exec'd command without waiting
	// for what it leaves behind.
	Helper string
	// StateDir holds runc's state (runc/), conmon's exit files (exits/)
	// and attach sockets (attach/), and each container's bundle
	// (bundles/<id>/). Volatile: normally under --state.
	StateDir string
	// SystemdCgroup has runc manage cgroups through systemd (the systemd
	// cgroup driver): linux.cgroupsPath is then "slice:prefix:name", which
	// runc without --systemd-cgroup would take for a directory of that name.
	SystemdCgroup bool
}

// Runtime runs OCI bundles with runc, each under its own conmon. conmon
// holds the container's stdio, writes its log in the CRI format and records
// its exit code, and outlives the daemon: nothing here needs the daemon to
// stay up for a container to keep running. Safe for concurrent use.
type Runtime struct {
	opts  RuntimeOptions
	log   *slog.Logger
	exits *exitWatcher
}

// NewRuntime prepares the state directories and starts watching for exits.
func NewRuntime(opts RuntimeOptions, log *slog.Logger) (*Runtime, error) {
	r := &Runtime{opts: opts, log: log}
	for _, d := range []string{r.runcRoot(), r.exitDir(), r.attachDir(), filepath.Join(opts.StateDir, "bundles")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	w, err := newExitWatcher(r.exitDir())
	if err != nil {
		return nil, err
	}
	r.exits = w
	return r, nil
}

// Close stops watching for exits. Containers keep running.
func (r *Runtime) Close() error { return r.exits.close() }

func (r *Runtime) runcRoot() string { return filepath.Join(r.opts.StateDir, "runc") }

// runcGlobal are the global options of every runc command we run.
func (r *Runtime) runcGlobal() []string {
	args := []string{"--root", r.runcRoot()}
	if r.opts.SystemdCgroup {
		args = append(args, "--systemd-cgroup")
	}
	return args
}
func (r *Runtime) exitDir() string   { return filepath.Join(r.opts.StateDir, "exits") }
func (r *Runtime) attachDir() string { return filepath.Join(r.opts.StateDir, "attach") }

// BundleDir is the container's OCI bundle (config.json, conmon's files).
func (r *Runtime) BundleDir(id string) string { return filepath.Join(r.opts.StateDir, "bundles", id) }

// CreateOptions describe a container to create.
type CreateOptions struct {
	ID, Name string
	Spec     *specs.Spec
	LogPath  string // CRI-format log file conmon writes
	Stdin    bool   // keep a pipe to the container's stdin (for attach)
	// StdinOnce closes stdin when the first attached client detaches.
	StdinOnce bool
	// RestoreFrom, when set, is a directory of CRIU images: conmon runs
	// "runc restore" from them instead of "runc create", and the
	// container is running when Create returns.
	RestoreFrom string
	// PlaceMonitor, when set, moves the long-lived conmon (by PID) into a
	// cgroup of the caller's choosing, while conmon runs "runc create":
	// the monitor lives there, and the container's processes are runc's
	// to place. An error fails the create.
	PlaceMonitor func(pid int) error
}

// Create writes the bundle and has conmon run "runc create": the container
// exists, stopped before its process runs, until Start. It returns the
// container's init PID.
func (r *Runtime) Create(ctx context.Context, o CreateOptions) (pid int, retErr error) {
	bundle := r.BundleDir(o.ID)
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return 0, err
	}
	undo := cleanup.New(r.log, "roll back a failed runc create", "container", o.ID)
	defer undo.OnError(ctx, &retErr)
	undo.Push("delete the container", func(ctx context.Context) error { return r.Delete(ctx, o.ID) })
	config, err := json.Marshal(o.Spec)
	if err != nil {
		return 0, fmt.Errorf("encode OCI spec: %w", err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), config, 0o600); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(o.LogPath), 0o755); err != nil {
		return 0, fmt.Errorf("create log directory: %w", err)
	}

	args := []string{
		"--api-version", "1",
		"-c", o.ID, "-u", o.ID, "-n", o.Name,
		"-r", r.opts.Runc,
		"-b", bundle,
		"-p", filepath.Join(bundle, "pidfile"),
		"-P", filepath.Join(bundle, "conmon.pid"),
		"-l", "k8s-file:" + o.LogPath,
		"--exit-dir", r.exitDir(),
		"--socket-dir-path", r.attachDir(),
		"--log-level", "info",
		"--syslog",
	}
	for _, a := range r.runcGlobal() {
		args = append(args, "--runtime-arg", a)
	}
	if o.RestoreFrom != "" {
		// conmon adds --detach, --image-path and --work-path (the bundle,
		// where CRIU leaves restore.log).
		args = append(args, "--restore", o.RestoreFrom)
	}
	if o.Spec.Process != nil && o.Spec.Process.Terminal {
		args = append(args, "-t")
	}
	if o.Stdin {
		args = append(args, "-i")
		if !o.StdinOnce {
			args = append(args, "--leave-stdin-open")
		}
	}
	// conmon reports the container's PID (or runc's error) on the sync
	// pipe, and waits to be told to go on the start pipe.
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer syncR.Close()
	startR, startW, err := os.Pipe()
	if err != nil {
		syncW.Close()
		return 0, err
	}
	defer startW.Close()
	// conmon's own output goes to a file: a pipe would be held open by the
	// long-lived child and Wait would never return.
	out, err := os.OpenFile(filepath.Join(bundle, "conmon.out"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		syncW.Close()
		return 0, err
	}
	defer out.Close()
	cmd := exec.Command(r.opts.Conmon, args...)
	cmd.Dir = bundle
	cmd.Env = append(os.Environ(), "_OCI_SYNCPIPE=3", "_OCI_STARTPIPE=4")
	cmd.ExtraFiles = []*os.File{syncW, startR}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: signals to the daemon's group never reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	syncW.Close()
	startR.Close()
	if err != nil {
		return 0, fmt.Errorf("start conmon: %w", err)
	}
	// conmon reads the start pipe, then forks: the parent writes the
	// child's PID to conmon.pid and exits, and the child, which lives on,
	// runs "runc create".
	if _, err := startW.Write([]byte{0}); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return 0, fmt.Errorf("signal conmon to start: %w", err)
	}
	startW.Close()
	if err := cmd.Wait(); err != nil {
		msg, _ := os.ReadFile(filepath.Join(bundle, "conmon.out"))
		return 0, fmt.Errorf("conmon: %w: %s", err, strings.TrimSpace(string(msg)))
	}
	// The monitor goes into its cgroup while "runc create" runs, not
	// before: moving a process waits for an RCU grace period (5 to 15 ms),
	// and runc's move of the container's init waits for one too. Side by
	// side they share the wait; one after the other StartContainer paid
	// both. Only "runc create" itself, which is gone when Create returns,
	// runs outside the monitor's cgroup.
	placed := make(chan error, 1)
	if o.PlaceMonitor != nil {
		monitor, err := readPidFile(filepath.Join(bundle, "conmon.pid"))
		if err != nil {
			return 0, fmt.Errorf("conmon: %w", err)
		}
		go func() {
			err := errors.New("placing conmon in its cgroup panicked")
			defer func() { placed <- err }()
			defer safego.Recover(r.log, "place conmon in its cgroup")
			err = o.PlaceMonitor(monitor)
		}()
		defer func() {
			if err := <-placed; err != nil && retErr == nil {
				_ = syscall.Kill(monitor, syscall.SIGKILL)
				retErr = fmt.Errorf("place conmon in its cgroup: %w", err)
			}
		}()
	}
	pid, err = readSync(ctx, syncR)
	if err != nil {
		if msg, _ := os.ReadFile(filepath.Join(bundle, "conmon.out")); len(bytes.TrimSpace(msg)) > 0 {
			err = fmt.Errorf("%w (conmon: %s)", err, bytes.TrimSpace(msg))
		}
		if o.RestoreFrom != "" {
			return 0, fmt.Errorf("restore container %s: %w%s", o.ID, err, criuLogErrors(filepath.Join(bundle, "restore.log")))
		}
		return 0, fmt.Errorf("create container %s: %w", o.ID, err)
	}
	return pid, nil
}

// readSync reads conmon's first {"data": pid, "message": "..."} report; a
// non-positive pid carries runc's error in the message.
func readSync(ctx context.Context, r *os.File) (int, error) {
	type report struct {
		Data    int    `json:"data"`
		Message string `json:"message"`
	}
	done := make(chan struct{})
	var (
		rep report
		err error
	)
	go func() {
		defer safego.Recover(nil, "read conmon sync report")
		defer close(done)
		// The first JSON object only: conmon keeps the pipe open while the
		// container lives.
		err = json.NewDecoder(io.LimitReader(r, 1<<20)).Decode(&rep)
		if errors.Is(err, io.EOF) {
			err = errors.New("conmon exited without reporting")
		}
	}()
	select {
	case <-done:
	case <-ctx.Done():
		r.Close() // unblocks the reader
		<-done
		return 0, ctx.Err()
	}
	if err != nil {
		return 0, err
	}
	if rep.Data <= 0 {
		msg := strings.TrimSpace(rep.Message)
		// The request named a program or path the image does not have, or
		// the image's paths do not fit the request (a WORKDIR or mount
		// target that is a file or a dangling link).
		if requestMisfit(msg) {
			return 0, fmt.Errorf("runc create: %s: %w", msg, errdefs.ErrInvalidArgument)
		}
		return 0, fmt.Errorf("runc create: %s", msg)
	}
	return rep.Data, nil
}

// runc runs one runc command against our state root.
func (r *Runtime) runc(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, r.opts.Runc, append(r.runcGlobal(), args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "does not exist") {
			return nil, fmt.Errorf("runc %s: %s: %w", args[0], msg, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("runc %s: %w: %s", args[0], err, msg)
	}
	return stdout.Bytes(), nil
}

// Start runs the created container's process.
func (r *Runtime) Start(ctx context.Context, id string) error {
	_, err := r.runc(ctx, "start", id)
	return err
}

// Kill sends sig to the container's init process. A container that has
// already stopped is not an error.
func (r *Runtime) Kill(ctx context.Context, id string, sig syscall.Signal) error {
	_, err := r.runc(ctx, "kill", id, strconv.Itoa(int(sig)))
	if err != nil && (errors.Is(err, errdefs.ErrNotFound) || strings.Contains(err.Error(), "not running")) {
		return nil
	}
	return err
}

// State is what runc knows of a container.
type State struct {
	Status string `json:"status"` // created, running, stopped, paused
	Pid    int    `json:"pid"`
}

// State asks runc; an unknown container is ErrNotFound.
func (r *Runtime) State(ctx context.Context, id string) (State, error) {
	out, err := r.runc(ctx, "state", id)
	if err != nil {
		return State{}, err
	}
	var st State
	if err := json.Unmarshal(out, &st); err != nil {
		return State{}, fmt.Errorf("runc state %s: %w", id, err)
	}
	return st, nil
}

// Exit is how a container's process ended.
type Exit struct {
	Code int
	At   time.Time
	// OOMKilled: the kernel killed a process of the container for lack of
	// memory in its cgroup (conmon leaves an "oom" file in the bundle).
	OOMKilled bool
}

// Exited reports the container's exit, if conmon has recorded one.
func (r *Runtime) Exited(id string) (Exit, bool) {
	p := filepath.Join(r.exitDir(), id)
	data, err := os.ReadFile(p)
	if err != nil || len(bytes.TrimSpace(data)) == 0 {
		return Exit{}, false
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return Exit{}, false
	}
	at := time.Now()
	if fi, err := os.Stat(p); err == nil {
		at = fi.ModTime()
	}
	_, err = os.Stat(filepath.Join(r.BundleDir(id), "oom"))
	return Exit{Code: code, At: at, OOMKilled: err == nil}, true
}

// Wait blocks until the container has exited (conmon wrote its exit file)
// or ctx ends. It uses inotify, not polling.
func (r *Runtime) Wait(ctx context.Context, id string) (Exit, error) {
	ch, cancel := r.exits.subscribe(id)
	defer cancel()
	for {
		if e, ok := r.Exited(id); ok {
			return e, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return Exit{}, ctx.Err()
		}
	}
}

// Delete removes the container from runc (killing it if it still runs),
// and its bundle and exit file. Deleting a container that is not there is
// not an error.
func (r *Runtime) Delete(ctx context.Context, id string) error {
	// A stopped container needs no --force, which makes runc kill the
	// cgroup and sleep 100 ms before removing it even when nothing is left
	// to kill: most of what RemoveContainer took. Only a container still
	// running (an interrupted create, say) is deleted by force.
	if _, err := r.runc(ctx, "delete", id); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		if _, err := r.runc(ctx, "delete", "--force", id); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
	}
	for _, p := range []string{r.BundleDir(id), filepath.Join(r.exitDir(), id), filepath.Join(r.attachDir(), id)} {
		if err := os.RemoveAll(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// requestMisfit tells whether runc's error means the request or the image
// does not fit (InvalidArgument for the kubelet), rather than a failure of
// the node.
func requestMisfit(msg string) bool {
	for _, words := range []string{"executable file not found", "no such file or directory", "file exists", "not a directory"} {
		if strings.Contains(msg, words) {
			return true
		}
	}
	return false
}

// readPidFile reads a process ID written by conmon or runc.
func readPidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: not a process ID: %q", path, b)
	}
	return pid, nil
}
