// Package framework runs the real cri-runtime binary for end-to-end tests and
// serves it test images from an in-process registry. Tests talk to the daemon
// only through k8s.io/cri-client, exactly as the kubelet does.
package framework

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	internalapi "k8s.io/cri-api/pkg/apis"
	remote "k8s.io/cri-client/pkg"
)

// BuildTags are the tags the daemon is built with (see the Makefile).
const BuildTags = "containers_image_openpgp exclude_graphdriver_btrfs exclude_graphdriver_devicemapper"

// CrashPointsTag is the build tag that compiles pkg/crashpoint's points
// into the daemon: the test builds have it, `make build` does not.
const CrashPointsTag = "crashpoints"

// BuildBinary returns the production daemon binary: $CRI_RUNTIME_BINARY
// when set (the Makefile builds it once), else a fresh build into dir.
func BuildBinary(dir string) (string, error) {
	return buildBinary(dir, "CRI_RUNTIME_BINARY", "cri-runtime", BuildTags)
}

// BuildTestBinary returns the daemon binary most end-to-end tests run, built
// with the crash points (CrashPointsTag): $CRI_RUNTIME_TEST_BINARY when set
// (make build-test), else a fresh build into dir.
func BuildTestBinary(dir string) (string, error) {
	return buildBinary(dir, "CRI_RUNTIME_TEST_BINARY", "cri-runtime-test", BuildTags+" "+CrashPointsTag)
}

func buildBinary(dir, env, name, tags string) (string, error) {
	if p := os.Getenv(env); p != "" {
		return filepath.Abs(p)
	}
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-tags", tags, "-o", out, "github.com/cri-runtime/cri-runtime/cmd/cri-runtime")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, b)
	}
	return out, nil
}

// HasCrashPoints tells whether the daemon binary at path was built with
// CrashPointsTag, from the build settings Go records in every binary.
func HasCrashPoints(path string) (bool, error) {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return false, err
	}
	for _, s := range bi.Settings {
		if s.Key == "-tags" && slices.Contains(strings.Split(s.Value, ","), CrashPointsTag) {
			return true, nil
		}
	}
	return false, nil
}

// Daemon is one cri-runtime process on its own root, state, socket and CNI
// configuration directory, all under Dir, and with a built-in pod network of
// its own (Net).
type Daemon struct {
	Binary                            string
	Dir, Root, State, Socket, CNIConf string
	Net                               *Network
	Args                              []string // full argument list
	// Env is added to the daemon's environment at each Start (e.g. to
	// arm a crash point); change it between a Stop and a Start.
	Env []string

	Runtime internalapi.RuntimeService
	Images  internalapi.ImageManagerService

	mu   sync.Mutex
	cmd  *exec.Cmd
	log  *bytes.Buffer
	done chan struct{}
	err  error // exit status, valid after done is closed
}

// Options configure NewDaemon.
type Options struct {
	Binary string
	// Args are appended to the standard directory flags.
	Args []string
	// StateOnTmpfs puts the state directory on a tmpfs of its own, as /run
	// is on a node (where syncing a file there costs nothing); for
	// benchmarks on a machine whose /tmp is a disk.
	StateOnTmpfs bool
}

// NewDaemon prepares (but does not start) a daemon in a fresh directory that
// is removed when the test ends. The directory is short so the socket path
// fits the 108-byte unix limit. The daemon's built-in network is its own
// (ClaimNetwork), set in the drop-in config.d/00-e2e-network.toml: a test
// that wants another one writes a drop-in that sorts after it.
func NewDaemon(t testing.TB, opts Options) *Daemon {
	t.Helper()
	dir, err := os.MkdirTemp("", "crirt-")
	if err != nil {
		t.Fatal(err)
	}
	network, err := ClaimNetwork()
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	// Searchable by others, as /var/lib is: a container in a user namespace
	// of its own reaches its root filesystem through it.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	dirsMu.Lock()
	dirs[dir] = true
	dirsMu.Unlock()
	d := &Daemon{
		Binary:  opts.Binary,
		Dir:     dir,
		Root:    filepath.Join(dir, "root"),
		State:   filepath.Join(dir, "state"),
		Socket:  filepath.Join(dir, "cri.sock"),
		CNIConf: filepath.Join(dir, "net.d"),
		Net:     network,
	}
	d.Args = append([]string{
		"--config", filepath.Join(dir, "config.toml"),
		"--config-dir", filepath.Join(dir, "config.d"),
		"--listen", d.Socket, "--root", d.Root, "--state", d.State,
		"--cni-conf-dir", d.CNIConf, "--log-level", "debug",
	}, opts.Args...)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if opts.StateOnTmpfs {
		if err := os.MkdirAll(d.State, 0o711); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", d.State, "tmpfs", 0, "mode=0711"); err != nil {
			t.Fatalf("tmpfs for the state: %v", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "config.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.d", "00-e2e-network.toml"), []byte(network.Config()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Stop(syscall.SIGTERM, 30*time.Second); err != nil {
			t.Errorf("stop daemon: %v", err)
		}
		if opts.StateOnTmpfs {
			// Busy only when the daemon left mounts in it, which the
			// report below names.
			_ = unix.Unmount(d.State, 0)
		}
		if logs := d.Logs(); strings.Contains(logs, "WARNING: DATA RACE") {
			t.Errorf("the daemon (built with the race detector) reported a data race:\n%s", raceReports(logs))
		}
		// Whatever the test did, nothing of this daemon may outlive it.
		if report := leakReport(dir); report != "" {
			t.Errorf("left on the host after the test, by the daemon in %s:%s", dir, report)
			clearLeftBehind(dir)
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Logs())
		}
		network.Release()
		os.RemoveAll(dir)
	})
	return d
}

// StartDaemon is NewDaemon followed by Start, failing the test on error.
func StartDaemon(t testing.TB, opts Options) *Daemon {
	t.Helper()
	d := NewDaemon(t, opts)
	if err := d.Start(); err != nil {
		t.Fatalf("start daemon: %v\n%s", err, d.Logs())
	}
	return d
}

// Start runs the daemon and waits until it answers Version through the
// kubelet's client. It can be called again after Stop, on the same dirs.
func (d *Daemon) Start() error {
	d.mu.Lock()
	if d.cmd != nil {
		d.mu.Unlock()
		return errors.New("daemon already running")
	}
	if d.log == nil {
		d.log = &bytes.Buffer{}
	} else { // keep what the earlier runs said: a restart is often the point
		d.log.WriteString("\n--- daemon restarted ---\n")
	}
	cmd := exec.Command(d.Binary, d.Args...)
	cmd.Env = append(os.Environ(), d.Env...)
	if os.Getenv("GORACE") == "" {
		// A program built with the race detector sleeps a second when it
		// exits (atexit_sleep_ms), and the daemon's helpers are the daemon's
		// binary: every ExecSync of the race build took 1.4s, longer than
		// the kubelet's default exec probe timeout. Races are still reported
		// as they happen.
		cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0")
	}
	cmd.Stdout, cmd.Stderr = syncWriter{&d.mu, d.log}, syncWriter{&d.mu, d.log}
	if err := cmd.Start(); err != nil {
		d.mu.Unlock()
		return err
	}
	d.cmd, d.done = cmd, make(chan struct{})
	done := d.done
	d.mu.Unlock()
	go func() {
		err := cmd.Wait()
		d.mu.Lock()
		d.err = err
		d.mu.Unlock()
		close(done)
	}()
	return d.connect(done)
}

// connect polls, with a deadline, until the socket answers or the process exits.
func (d *Daemon) connect(done chan struct{}) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("daemon exited during start-up: %v", d.ExitErr())
		default:
		}
		if _, err := os.Stat(d.Socket); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			rt, err := remote.NewRemoteRuntimeServiceBuilder().WithEndpoint("unix://" + d.Socket).
				WithConnectionTimeout(30 * time.Second).WithTracerProvider(nil).Build(ctx)
			if err == nil {
				var img internalapi.ImageManagerService
				img, err = remote.NewRemoteImageServiceBuilder().WithEndpoint("unix://" + d.Socket).
					WithConnectionTimeout(5 * time.Minute).WithTracerProvider(nil).Build(ctx)
				d.Runtime, d.Images = rt, img
			}
			cancel()
			if err == nil {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("daemon did not answer on %s: %w", d.Socket, err)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("socket %s did not appear", d.Socket)
		}
		select {
		case <-done:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop sends sig and waits up to timeout for the process to exit, then kills
// it. A daemon that is not running is not an error.
func (d *Daemon) Stop(sig syscall.Signal, timeout time.Duration) error {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(sig)
	var err error
	select {
	case <-done:
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		err = fmt.Errorf("daemon ignored %v for %v", sig, timeout)
	}
	d.mu.Lock()
	d.cmd = nil
	d.mu.Unlock()
	return err
}

// Wait waits up to timeout for the process to exit by itself and returns its
// exit error.
func (d *Daemon) Wait(timeout time.Duration) error {
	d.mu.Lock()
	done := d.done
	d.mu.Unlock()
	select {
	case <-done:
		d.mu.Lock()
		d.cmd = nil
		d.mu.Unlock()
		return d.ExitErr()
	case <-time.After(timeout):
		return fmt.Errorf("daemon still running after %v", timeout)
	}
}

// ExitErr is the process's exit status once it has exited.
func (d *Daemon) ExitErr() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// Logs returns everything the daemon wrote so far.
func (d *Daemon) Logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.log == nil {
		return ""
	}
	return d.log.String()
}

type syncWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// raceReports extracts the race detector's reports from a daemon's log.
func raceReports(logs string) string {
	var b strings.Builder
	for _, part := range strings.Split(logs, "==================")[1:] {
		if strings.Contains(part, "WARNING: DATA RACE") {
			b.WriteString(part)
		}
	}
	return b.String()
}
