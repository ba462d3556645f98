package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/cleanup"
	"github.com/cri-runtime/cri-runtime/pkg/crashpoint"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/events"
	"github.com/cri-runtime/cri-runtime/pkg/index"
	"github.com/cri-runtime/cri-runtime/pkg/oci"
	"github.com/cri-runtime/cri-runtime/pkg/safego"
	"github.com/cri-runtime/cri-runtime/pkg/store"
)

// Start runs a created container's process.
func (s *Service) Start(ctx context.Context, id string) error {
	c, err := s.Get(id)
	if err != nil {
		return err
	}
	// The pod must be ready, and stays so until the process runs: a
	// StopPodSandbox or RemovePodSandbox waits (and then stops it), and a
	// start after a stop is refused. Admitted before the container's
	// lock, which the pod's stop takes after the pod's gate.
	release, err := s.opts.Pods.Admit(c.PodID)
	if err != nil {
		return fmt.Errorf("start container %s: %w", c.ID, err)
	}
	defer release()
	defer s.lock(c.ID)()
	if c, err = s.Get(c.ID); err != nil {
		return err
	}
	if c.State != Created {
		return fmt.Errorf("container %s is %s, not created: %w", c.ID, c.State, errdefs.ErrFailedPrecondition)
	}
	if c.Removing {
		return fmt.Errorf("container %s is being removed: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	rt := s.runtimeOf(c)
	crashpoint.Hit("ctr-start:before")
	if c.Restore != nil {
		// conmon runs "runc restore": the container runs when it returns.
		if err := s.startRestore(ctx, c, time.Now()); err != nil {
			return err
		}
		safego.Go(s.log, "watch container exit", func() { s.watch(c.ID) })
		s.opts.Events.Publish(events.Event{Type: events.Started, ContainerID: c.ID, PodID: c.PodID})
		return nil
	}
	pid := c.Pid
	undo := cleanup.New(s.log, "roll back a failed StartContainer", "container", c.ID)
	if c.Deferred {
		// The work CreateContainer left: conmon and "runc create". A
		// failure leaves the container created, with nothing of runc's
		// (oci.Runtime.Create deletes what it made).
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		pid, err = rt.Create(rctx, oci.CreateOptions{ID: c.ID, Name: c.Name, Spec: c.Spec, LogPath: s.logFile(c), Stdin: c.Stdin, StdinOnce: c.StdinOnce,
			PlaceMonitor: s.monitorPlacer(filepath.Dir(c.CgroupPath), c.ID)})
		cancel()
		if err != nil {
			return fmt.Errorf("start container %s: %w", c.ID, err)
		}
		// Made by this call, so undone by it: a failed start leaves the
		// container created, as it found it.
		undo.Push("delete the runc container", func(ctx context.Context) error { return rt.Delete(ctx, c.ID) })
	}
	// The process begins during "runc start": take the time before it, so
	// that a process exiting at once never seems to end before it started.
	startedAt := time.Now()
	if err := rt.Start(ctx, c.ID); err != nil {
		err = fmt.Errorf("start container %s: %w", c.ID, err)
		undo.OnError(ctx, &err)
		return err
	}
	undo.Release()
	crashpoint.Hit("ctr-start:started")
	// One record for both steps: a crash before it leaves a record that
	// says created with a runc container that exists, which the start-up
	// reconciles (service.go, reconcile).
	started := func(c *Container) error {
		if c.State == Created {
			c.State, c.StartedAt, c.Pid, c.Deferred = Running, startedAt, pid, false
		}
		return nil
	}
	// The process runs: failing the call when the record cannot be
	// written (a full disk) would make a retry fail against a running
	// container and leave no one watching for its exit. The live record
	// says running; the exit, or a restart's reconcile, writes the record.
	if _, err := s.updateUnsaved(c.ID, started); err != nil {
		if !errors.Is(err, store.ErrUnsaved) {
			return err
		}
		s.log.Warn("container started; its record is written with its exit", "container", c.ID, "err", err)
	}
	safego.Go(s.log, "watch container exit", func() { s.watch(c.ID) })
	s.opts.Events.Publish(events.Event{Type: events.Started, ContainerID: c.ID, PodID: c.PodID})
	s.log.Info("container started", "container", c.ID)
	return nil
}

// watch waits for the container's exit and records it. conmon writes the
// exit file even while the daemon is down; a restarted daemon resumes here.
// When the record cannot be written (a full disk under --root), it tries
// again, backing off, until it is written or the container is gone: Get
// shows the exit meanwhile, from conmon's exit file.
func (s *Service) watch(id string) {
	exit, err := s.runtimeByID(id).Wait(context.Background(), id)
	if err != nil {
		return
	}
	crashpoint.Hit("ctr-watch:exited")
	for delay := time.Second; ; delay = min(2*delay, 10*time.Second) {
		_, err := s.recordExit(id, exit)
		if err == nil || errors.Is(err, errdefs.ErrNotFound) {
			return
		}
		s.log.Warn("record container exit; will retry", "container", id, "err", err, "retry_in", delay)
		time.Sleep(delay)
	}
}

// recordExit moves a running container to Exited with conmon's exit code.
// On error nothing changed (the exit stays in conmon's file).
func (s *Service) recordExit(id string, exit oci.Exit) (*Container, error) {
	stopped := false
	c, err := s.update(id, func(c *Container) error {
		stopped = applyExit(c, exit)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record exit of container %s: %w", id, err)
	}
	if stopped {
		s.log.Info("container exited", "container", id, "exit_code", exit.Code)
		s.opts.Events.Publish(events.Event{Type: events.Stopped, ContainerID: id, PodID: c.PodID})
	}
	return c, nil
}

// applyExit moves c to Exited with conmon's exit, unless it already is;
// it reports whether c changed.
func applyExit(c *Container, exit oci.Exit) bool {
	if c.State == Exited {
		return false
	}
	c.State, c.ExitCode, c.FinishedAt = Exited, exit.Code, exit.At
	if c.StartedAt.IsZero() {
		c.StartedAt = exit.At
	}
	// The exit file's time comes from the kernel's coarse clock.
	if c.FinishedAt.Before(c.StartedAt) {
		c.FinishedAt = c.StartedAt
	}
	switch {
	case exit.OOMKilled:
		c.Reason, c.Message = "OOMKilled", "the container's cgroup ran out of memory"
	case exit.Code != 0:
		c.Reason = "Error"
	default:
		c.Reason = "Completed"
	}
	return true
}

// Stop signals the container with its stop signal, waits up to timeout,
// then kills it. A timeout of zero kills at once. Stopping a container that
// is not running, or that does not exist, succeeds (api.proto).
func (s *Service) Stop(ctx context.Context, id string, timeout time.Duration) error {
	c, err := s.Get(id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer s.lock(c.ID)()
	return s.stopLocked(ctx, c.ID, timeout)
}

func (s *Service) stopLocked(ctx context.Context, id string, timeout time.Duration) error {
	c, err := s.Get(id)
	if err != nil || c.State != Running {
		return nil
	}
	rt := s.runtimeOf(c)
	s.stopping.Store(id, true)
	defer s.stopping.Delete(id)
	if timeout > 0 {
		sig := unix.SignalNum(c.StopSignal)
		if sig == 0 {
			sig = unix.SIGTERM
		}
		if err := rt.Kill(ctx, id, sig); err != nil {
			return fmt.Errorf("signal container %s: %w", id, err)
		}
		wctx, cancel := context.WithTimeout(ctx, timeout)
		exit, err := rt.Wait(wctx, id)
		cancel()
		if err == nil {
			_, err = s.recordExit(id, exit)
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.log.Info("container ignored its stop signal; killing it", "container", id, "signal", c.StopSignal, "timeout", timeout)
	}
	if err := rt.Kill(ctx, id, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill container %s: %w", id, err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	exit, err := rt.Wait(wctx, id)
	if err != nil {
		return fmt.Errorf("wait for container %s to die: %w", id, err)
	}
	_, err = s.recordExit(id, exit)
	return err
}

// Remove deletes the container, killing it first if it runs. Removing an
// unknown container succeeds. It returns once the container is marked
// removed and gone from List and Get; its runc container, writable layer
// and record are deleted in the background (removal.go), and what needs
// them gone waits for that (WaitRemovals).
func (s *Service) Remove(ctx context.Context, id string) error {
	c, err := s.Get(id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	id = c.ID
	defer s.lock(id)()
	if err := s.stopLocked(ctx, id, 0); err != nil {
		return err
	}
	// Write-ahead: from here a crash leaves a container the start-up removes.
	c, err = s.update(id, func(c *Container) error { c.Removing = true; return nil })
	if err != nil {
		return err
	}
	crashpoint.Hit("ctr-remove:marked")
	s.removeLater(c)
	s.opts.Events.Publish(events.Event{Type: events.Deleted, ContainerID: id, PodID: c.PodID})
	s.log.Info("container removed", "container", id)
	if s.lowOnSpace() { // the caller wants the space now (removal.go)
		return s.removing.wait(ctx, func(r *Container) bool { return r.ID == id })
	}
	return nil
}

// forget drops the container from memory (store.Drop: an update racing
// with it either lands before or finds the container gone) and frees its
// name. Its record on disk stays until the background removal deletes it.
func (s *Service) forget(c *Container) {
	s.store.Drop(c.ID)
	s.dropName(c)
	// Not under s.mu: handover.Do holds its own lock while it asks (taken)
	// under s.mu whether the name is in use; the other order deadlocks.
	s.handover.Forget(c.nameKey())
	s.locks.Forget(c.ID)
	s.samples.Forget(c.CgroupPath)
}

// Filter selects containers for List; zero fields match all.
type Filter struct {
	ID, PodID string
	State     State
	Labels    map[string]string
}

// List returns copies of the matching containers, oldest first.
func (s *Service) List(f Filter) []*Container {
	// What never changes is matched on the records; the state once an
	// exit conmon recorded is applied (Get).
	matched := s.store.List(func(c *Container) bool {
		return (f.ID == "" || strings.HasPrefix(c.ID, f.ID)) && (f.PodID == "" || strings.HasPrefix(c.PodID, f.PodID)) &&
			index.LabelsMatch(c.Labels, f.Labels)
	})
	var out []*Container
	for _, c := range matched {
		if c.State == Running {
			var err error
			if c, err = s.Get(c.ID); err != nil {
				continue
			}
		}
		if f.State != "" && c.State != f.State {
			continue
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out
}

// StopPodContainers kills the pod's running containers (the pod is going
// away: api.proto says they are forcibly terminated).
func (s *Service) StopPodContainers(ctx context.Context, podID string) error {
	for _, c := range s.List(Filter{PodID: podID, State: Running}) {
		if err := s.Stop(ctx, c.ID, 0); err != nil {
			return err
		}
	}
	return nil
}

// RemovePodContainers removes all of the pod's containers, and returns
// once nothing of them is left: the pod's own removal comes next.
func (s *Service) RemovePodContainers(ctx context.Context, podID string) error {
	for _, c := range s.List(Filter{PodID: podID}) {
		if err := s.Remove(ctx, c.ID); err != nil {
			return err
		}
	}
	return s.WaitRemovals(ctx, podID)
}

func readTrim(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}
