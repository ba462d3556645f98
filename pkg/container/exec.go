package container

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/oci"
	"github.com/cri-runtime/cri-runtime/pkg/oci/spec"
)

// running returns the container if it is running, else FailedPrecondition.
func (s *Service) running(id string) (*Container, error) {
	c, err := s.Get(id)
	if err != nil {
		return nil, err
	}
	if c.State != Running {
		return nil, fmt.Errorf("container %s is %s, not running: %w", c.ID, c.State, errdefs.ErrFailedPrecondition)
	}
	return c, nil
}

// ExecResult is what a command run by ExecSync wrote and how it exited.
type ExecResult struct {
	Stdout, Stderr []byte
	ExitCode       int
}

// ExecSync runs cmd in the running container and returns its output and
// exit code; see oci.Runtime.ExecSync for the timeout and output cap.
func (s *Service) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (*ExecResult, error) {
	c, err := s.running(id)
	if err != nil {
		return nil, err
	}
	res, err := s.runtimeOf(c).ExecSync(ctx, c.ID, cmd, timeout)
	if err != nil {
		return nil, s.execFailed(c, err)
	}
	// Killed by a signal while the container was being stopped: the
	// command did not finish because the container went, which is what a
	// caller coming second would have been told.
	if res.ExitCode > 128 {
		if why := s.notRunning(c); why != nil {
			return nil, fmt.Errorf("command %q was killed (exit code %d): %w", cmd, res.ExitCode, why)
		}
	}
	return &ExecResult{Stdout: res.Stdout, Stderr: res.Stderr, ExitCode: res.ExitCode}, nil
}

// execFailed classifies an exec that failed: when the container stopped
// (or went) while it was being started, runc's complaint ("cannot exec in
// a stopped container") means the container is no longer running, which
// is FailedPrecondition (or NotFound), as if the exec had come second.
func (s *Service) execFailed(c *Container, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	// A stop that killed the process while runc was joining it may not be
	// visible yet (runc then fails in setns with "broken pipe"): look
	// again for a moment before calling the failure the exec's own.
	for deadline := time.Now().Add(execSettle); ; time.Sleep(50 * time.Millisecond) {
		if why := s.notRunning(c); why != nil {
			// Only why's code: runc's message may look like bad input.
			return fmt.Errorf("%v (%w)", err, why)
		}
		if time.Now().After(deadline) {
			return err
		}
	}
}

// execSettle is how long a failed exec waits to see whether the container
// was stopping under it.
const execSettle = time.Second

// notRunning says why c no longer runs (removed: NotFound; stopped:
// FailedPrecondition), nil while it does.
func (s *Service) notRunning(c *Container) error {
	now, gerr := s.Get(c.ID)
	switch {
	case errors.Is(gerr, errdefs.ErrNotFound):
		return fmt.Errorf("container %s was removed meanwhile: %w", c.ID, errdefs.ErrNotFound)
	case gerr == nil && now.State != Running:
		return fmt.Errorf("container %s stopped meanwhile: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	// A stop is killing it: under load its death may take longer than
	// any settling wait.
	if _, ok := s.stopping.Load(c.ID); ok {
		return fmt.Errorf("container %s is being stopped: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	// Its exit may not be recorded yet: ask runc.
	if st, serr := s.runtimeOf(c).State(context.Background(), c.ID); errors.Is(serr, errdefs.ErrNotFound) ||
		(serr == nil && st.Status != "running" && st.Status != "paused") {
		return fmt.Errorf("container %s stopped meanwhile: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	return nil
}

// Exec runs cmd in the running container connected to the client's
// streams and returns its exit code; see oci.Runtime.Exec.
func (s *Service) Exec(ctx context.Context, id string, cmd []string, streams oci.Streams) (int, error) {
	c, err := s.running(id)
	if err != nil {
		return 0, err
	}
	code, err := s.runtimeOf(c).Exec(ctx, c.ID, cmd, streams)
	if err != nil {
		return code, s.execFailed(c, err)
	}
	return code, nil
}

// Attach connects the client's streams to the running container's main
// process. A client's stdin reaches it only when the container was created
// with stdin; otherwise it is ignored, as other runtimes do.
func (s *Service) Attach(ctx context.Context, id string, streams oci.Streams) error {
	c, err := s.running(id)
	if err != nil {
		return err
	}
	if !c.Stdin {
		streams.Stdin = nil
	}
	return s.runtimeOf(c).Attach(ctx, c.ID, streams, c.StdinOnce)
}

// ReopenLog has the container's monitor reopen its log file after the
// kubelet rotated it.
func (s *Service) ReopenLog(id string) error {
	c, err := s.running(id)
	if err != nil {
		return err
	}
	return s.runtimeOf(c).ReopenLog(c.ID, s.logFile(c))
}

// UpdateResources applies new limits to the running container's cgroup
// and records them in its spec.
func (s *Service) UpdateResources(ctx context.Context, id string, req Resources) error {
	r := req.Spec()
	c, err := s.running(id)
	if err != nil {
		return err
	}
	defer s.lock(c.ID)()
	s.warnMissingControllers(r)
	res, err := spec.LinuxResources(r, s.opts.Controllers)
	if err != nil {
		return err
	}
	if err := s.runtimeOf(c).Update(ctx, c.ID, res); err != nil {
		return err
	}
	_, err = s.update(c.ID, func(c *Container) error {
		if c.Spec != nil && c.Spec.Linux != nil {
			if c.Spec.Linux.Resources != nil { // device rules are not updated
				res.Devices = c.Spec.Linux.Resources.Devices
			}
			// The copy shares the spec with the live record: replace, do
			// not modify, what changes.
			sp, linux := *c.Spec, *c.Spec.Linux
			linux.Resources = res
			sp.Linux = &linux
			c.Spec = &sp
		}
		return nil
	})
	return err
}

// logFile is where conmon writes the container's output: its log path, or
// a file next to its record when the pod has no log directory.
func (s *Service) logFile(c *Container) string {
	if c.LogPath != "" {
		return c.LogPath
	}
	return filepath.Join(s.opts.Root, "containers", c.ID, "output.log")
}
