package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/proc"

	"github.com/cri-runtime/cri-runtime/pkg/safego"
)

// pidNS is the PID namespace of a pod whose containers share one.
var pidNS = nsKind{"pid", unix.CLONE_NEWPID}

// startPause starts the pod's init: our own binary's "pause" command as
// PID 1 of a new PID namespace, in its own session (so it outlives the
// daemon), which puts itself in the pod's cgroup. A PID namespace dies with its init, so
// this process, unlike the pinned namespaces, must stay alive; it only reaps
// the orphans the pod's containers leave. Its namespace is pinned at
// dir/ns/pid so containers join it by path.
func (m *Manager) startPause(sb *Sandbox) error {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	// The init moves itself into the pod cgroup: a cgroup v1 migration waits
	// for an RCU grace period, which RunPodSandbox need not wait for.
	args := []string{"pause"}
	if !m.opts.CgroupDriver.IsSystemd() {
		args = append(args, sb.CgroupParent)
	}
	cmd := exec.Command(m.opts.PauseBinary, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.Env = pauseEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the pod's init: %w", err)
	}
	safego.Go(m.log, "reap pod pause process", func() { _ = cmd.Wait() }) // reap it when it ends while we run
	pid := cmd.Process.Pid
	sb.PausePID, sb.PauseStart = pid, processStart(pid)
	target := filepath.Join(sb.Dir, "ns", pidNS.name)
	if err := pin(fmt.Sprintf("/proc/%d/ns/pid", pid), target); err != nil {
		m.stopPause(sb)
		return err
	}
	sb.Namespaces[pidNS.name] = target
	return nil
}

// placePause moves the pod's init, started by the daemon, out of the
// daemon's cgroup into the pod's: a leaf of the pod's cgroup (PodInit) with
// cgroupfs, a scope of its own in the pod's slice with systemd, where it
// does not count as the service's and its slice holds only scopes. (The
// init of a pod without a user namespace joins its cgroupfs leaf itself.)
func (m *Manager) placePause(sb *Sandbox) error {
	if err := m.opts.CgroupDriver.PlacePodInit(sb.CgroupParent, sb.ID, sb.PausePID); err != nil {
		return fmt.Errorf("move the pod's init into its cgroup: %w", err)
	}
	return nil
}

// pauseEnv is the pod init's environment: ours, with the Go runtime held to
// one P (GOMAXPROCS), which a reaper is content with and which saves every
// pod about 100 kB of the runtime's per-P memory.
func pauseEnv() []string {
	env := make([]string, 0, len(os.Environ())+1)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "GOMAXPROCS=") {
			env = append(env, e)
		}
	}
	return append(env, "GOMAXPROCS=1")
}

// stopPause kills the pod's init if it is still the process we started
// (checked by its start time, so a reused PID is never signalled).
func (m *Manager) stopPause(sb *Sandbox) {
	if sb.PausePID <= 0 {
		return
	}
	if processStart(sb.PausePID) == sb.PauseStart {
		_ = unix.Kill(sb.PausePID, unix.SIGKILL)
	}
	sb.PausePID, sb.PauseStart = 0, 0
}

// processStart is a process's start time in clock ticks since boot, 0
// when it does not exist.
func processStart(pid int) uint64 {
	st, err := proc.ReadStat(pid)
	if err != nil {
		return 0
	}
	return st.StartTicks
}

var errNoPauseBinary = errors.New("no pause binary configured")
