package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/checkpoint"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/oci"
)

// CRIU says whether checkpoint and restore work on this node (oci.CRIU).
type CRIU interface {
	// Check is nil when they do, else FailedPrecondition with CRIU's reason.
	Check(ctx context.Context) error
}

// DefaultCheckpointTimeout bounds a checkpoint whose request names none.
const DefaultCheckpointTimeout = 5 * time.Minute

// CheckpointRequest asks for a running container's checkpoint archive.
type CheckpointRequest struct {
	ID       string
	Location string        // absolute path of the archive to write
	Timeout  time.Duration // 0: DefaultCheckpointTimeout
}

func (s *Service) checkpointWorkDir() string { return filepath.Join(s.opts.Root, "checkpoints") }

// Checkpoint writes a running container's checkpoint archive (package
// checkpoint's layout) at the request's location: runc checkpoint with
// --leave-running dumps its processes with CRIU, and the archive gets its
// metadata, spec, file changes and log. The container keeps running. The
// archive appears whole or not at all (written beside it, then renamed).
func (s *Service) Checkpoint(ctx context.Context, req CheckpointRequest) error {
	location, err := checkpoint.FileLocation(req.Location, s.ArchiveForbidden())
	if err != nil {
		return err
	}
	c, err := s.Get(req.ID)
	if err != nil {
		return err
	}
	if err := s.CheckCheckpointable(ctx, c.ID); err != nil {
		return err
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultCheckpointTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	work, err := s.CheckpointWorkDir(c.ID[:12])
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	start := time.Now()
	if err := s.Dump(ctx, c.ID, work); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("checkpoint container %s: not done within %s: %w", c.ID, timeout, ctx.Err())
		}
		return err
	}
	dumped := time.Now()
	if err := writeArchive(work, location); err != nil {
		return err
	}
	s.log.Info("container checkpointed", "container", c.ID, "location", location,
		"dump", dumped.Sub(start).Round(time.Millisecond), "total", time.Since(start).Round(time.Millisecond))
	return nil
}

// ArchiveForbidden are the directories no checkpoint may be written to or
// read from: the runtime's own.
func (s *Service) ArchiveForbidden() []string {
	return append([]string{s.opts.Root}, s.opts.ArchiveForbidden...)
}

// CheckpointWorkDir makes a new, private directory for a checkpoint's or
// restore's files under the runtime's root (removed at start-up, should a
// crash leave it); the caller removes it.
func (s *Service) CheckpointWorkDir(prefix string) (string, error) {
	if err := os.MkdirAll(s.checkpointWorkDir(), 0o700); err != nil {
		return "", err
	}
	return os.MkdirTemp(s.checkpointWorkDir(), prefix+"-")
}

// CheckCheckpointable is nil when container id can be checkpointed now:
// it is running, has no terminal, and CRIU works here. Otherwise NotFound
// or FailedPrecondition saying why.
func (s *Service) CheckCheckpointable(ctx context.Context, id string) error {
	c, err := s.Get(id)
	if err != nil {
		return err
	}
	if c.State != Running {
		return fmt.Errorf("container %s is %s, not running: only a running container can be checkpointed: %w", c.ID, c.State, errdefs.ErrFailedPrecondition)
	}
	if c.Spec != nil && c.Spec.Process != nil && c.Spec.Process.Terminal {
		return fmt.Errorf("container %s has a terminal, which CRIU cannot checkpoint here: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	if s.opts.CRIU == nil {
		return fmt.Errorf("checkpoint/restore is not configured: %w", errdefs.ErrFailedPrecondition)
	}
	return s.opts.CRIU.Check(ctx)
}

// Dump writes a running (or paused) container's checkpoint into dir, in
// package checkpoint's layout: CRIU's images (runc checkpoint
// --leave-running), its metadata and spec, its file changes and its log.
// The container keeps running, or stays paused: CRIU puts the cgroup
// freezer back as it found it.
func (s *Service) Dump(ctx context.Context, id, dir string) error {
	c, err := s.Get(id)
	if err != nil {
		return err
	}
	defer s.lock(c.ID)()
	if c, err = s.Get(c.ID); err != nil {
		return err
	}
	if c.State != Running {
		return fmt.Errorf("container %s is %s, not running: only a running container can be checkpointed: %w", c.ID, c.State, errdefs.ErrFailedPrecondition)
	}
	rt := s.runtimeOf(c)
	before, _ := rt.State(ctx, c.ID)
	if err := rt.Checkpoint(ctx, c.ID, oci.CheckpointOptions{
		ImageDir: filepath.Join(dir, checkpoint.ImagesDir), WorkDir: dir, LeaveRunning: true,
	}); err != nil {
		return err
	}
	// A pod checkpoint is one cut only if the dump left a paused container
	// paused: make sure, rather than trust it.
	if before.Status == "paused" {
		if after, err := rt.State(ctx, c.ID); err != nil || after.Status != "paused" {
			return fmt.Errorf("container %s was thawed by its dump (runc state %q, %v): the checkpoint would not be one cut of its pod: %w", c.ID, after.Status, err, errdefs.ErrFailedPrecondition)
		}
	}
	return s.writeCheckpointFiles(c, dir, time.Now())
}

// Pause freezes a running container's processes (runc pause), for a
// checkpoint of several containers that is one cut. Nothing but a pod
// checkpoint pauses containers: start-up resumes any found paused.
func (s *Service) Pause(ctx context.Context, id string) error {
	c, err := s.Get(id)
	if err != nil {
		return err
	}
	defer s.lock(c.ID)()
	if c, err = s.Get(c.ID); err != nil {
		return err
	}
	if c.State != Running {
		return fmt.Errorf("container %s is %s, not running: %w", c.ID, c.State, errdefs.ErrFailedPrecondition)
	}
	if err := s.runtimeOf(c).Pause(ctx, c.ID); err != nil {
		return fmt.Errorf("pause container %s: %w", c.ID, err)
	}
	return nil
}

// Resume thaws a container Pause froze. One that is not paused (it has
// gone meanwhile, or was never frozen) is not an error: there is nothing
// to thaw.
func (s *Service) Resume(ctx context.Context, id string) error {
	c, err := s.Get(id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer s.lock(c.ID)()
	rt := s.runtimeOf(c)
	st, err := rt.State(ctx, c.ID)
	if errors.Is(err, errdefs.ErrNotFound) || err == nil && st.Status != "paused" {
		return nil
	}
	if err == nil {
		err = rt.Resume(ctx, c.ID)
	}
	if err != nil {
		return fmt.Errorf("resume container %s: %w", c.ID, err)
	}
	return nil
}

// writeCheckpointFiles adds to CRIU's images what a restore needs.
func (s *Service) writeCheckpointFiles(c *Container, work string, at time.Time) error {
	cfg := checkpoint.Config{
		ID: c.ID, Name: c.Name, RootfsImage: c.ImageID, RootfsImageRef: c.ImageID, RootfsImageName: c.Image,
		OCIRuntime: c.Handler, CreatedTime: c.CreatedAt, CheckpointedAt: at,
		PodID: c.PodID, Attempt: c.Attempt, StopSignal: c.StopSignal, Labels: c.Labels, Annotations: c.Annotations,
	}
	if cfg.OCIRuntime == "" {
		cfg.OCIRuntime = s.opts.DefaultHandler
	}
	for _, m := range c.Mounts {
		cfg.Mounts = append(cfg.Mounts, m.ContainerPath)
	}
	for name, v := range map[string]any{checkpoint.ConfigDumpFile: cfg, checkpoint.SpecDumpFile: c.Spec} {
		data, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("encode %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(work, name), data, 0o600); err != nil {
			return err
		}
	}
	// The writable layer: changed files in a tar, deleted ones in a list.
	diff, err := s.opts.Images.WritableLayerDiff(c.ID)
	if err != nil {
		return err
	}
	defer diff.Close()
	f, err := os.OpenFile(filepath.Join(work, checkpoint.RootfsDiffFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	deleted, err := checkpoint.SplitDiff(diff, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if len(deleted) > 0 {
		data, _ := json.Marshal(deleted)
		if err := os.WriteFile(filepath.Join(work, checkpoint.DeletedFilesFile), data, 0o600); err != nil {
			return err
		}
	}
	// The log so far, and CRIU's statistics at the top level, where
	// checkpointctl looks for them.
	if err := copyFile(s.logFile(c), filepath.Join(work, checkpoint.ContainerLog)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("copy the container's log: %w", err)
	}
	if err := copyFile(filepath.Join(work, checkpoint.ImagesDir, checkpoint.StatsDumpFile), filepath.Join(work, checkpoint.StatsDumpFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// writeArchive tars work into location: a temporary file beside it,
// synced, then renamed over it. Mode 0600: the archive holds the
// container's memory.
func writeArchive(work, location string) (retErr error) {
	f, err := os.CreateTemp(filepath.Dir(location), "."+filepath.Base(location)+".tmp*")
	if err != nil {
		return fmt.Errorf("write checkpoint archive: %w", err)
	}
	defer func() {
		if retErr != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := checkpoint.Write(f, work); err != nil {
		return fmt.Errorf("write checkpoint archive: %w", err)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), location)
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
