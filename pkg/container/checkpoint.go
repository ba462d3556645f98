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
	"strings"
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
	location, err := s.archiveLocation(req.Location)
	if err != nil {
		return err
	}
	c, err := s.Get(req.ID)
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
	if c.Spec != nil && c.Spec.Process != nil && c.Spec.Process.Terminal {
		return fmt.Errorf("container %s has a terminal, which CRIU cannot checkpoint here: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	if s.opts.CRIU == nil {
		return fmt.Errorf("checkpoint/restore is not configured: %w", errdefs.ErrFailedPrecondition)
	}
	if err := s.opts.CRIU.Check(ctx); err != nil {
		return err
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultCheckpointTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	if err := os.MkdirAll(s.checkpointWorkDir(), 0o700); err != nil {
		return err
	}
	work, err := os.MkdirTemp(s.checkpointWorkDir(), c.ID[:12]+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	start := time.Now()
	if err := s.runtimeOf(c).Checkpoint(ctx, c.ID, oci.CheckpointOptions{
		ImageDir: filepath.Join(work, checkpoint.ImagesDir), WorkDir: work, LeaveRunning: true,
	}); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("checkpoint container %s: not done within %s: %w", c.ID, timeout, ctx.Err())
		}
		return err
	}
	dumped := time.Now()
	if err := s.writeCheckpointFiles(c, work, dumped); err != nil {
		return err
	}
	if err := writeArchive(work, location); err != nil {
		return err
	}
	s.log.Info("container checkpointed", "container", c.ID, "location", location,
		"dump", dumped.Sub(start).Round(time.Millisecond), "total", time.Since(start).Round(time.Millisecond))
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

// archiveLocation checks where a checkpoint archive may be written: an
// absolute, clean path of a file (or of nothing yet) in an existing
// directory outside the daemon's own directories.
func (s *Service) archiveLocation(loc string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("checkpoint location %q: %s: %w", loc, why, errdefs.ErrInvalidArgument)
	}
	switch {
	case loc == "":
		return bad("a location is required")
	case !filepath.IsAbs(loc):
		return bad("must be an absolute path")
	case filepath.Clean(loc) != loc || strings.HasSuffix(loc, "/"):
		return bad("must be a clean path naming a file")
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(loc))
	if err != nil {
		return bad("its directory does not exist")
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return bad("its parent is not a directory")
	}
	for _, own := range append([]string{s.opts.Root}, s.opts.ArchiveForbidden...) {
		if own == "" {
			continue
		}
		if r, err := filepath.EvalSymlinks(own); err == nil {
			own = r
		}
		if rel, err := filepath.Rel(own, dir); err == nil && (rel == "." || !strings.HasPrefix(rel, "..")) {
			return bad("it is inside the runtime's own directory " + own)
		}
	}
	full := filepath.Join(dir, filepath.Base(loc))
	if fi, err := os.Lstat(full); err == nil && !fi.Mode().IsRegular() {
		return bad("it exists and is not a regular file")
	}
	return full, nil
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
