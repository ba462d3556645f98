package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cri-runtime/cri-runtime/pkg/checkpoint"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/oci"
	"github.com/cri-runtime/cri-runtime/pkg/safego"
)

// Restore marks a container made from a checkpoint archive whose
// processes CRIU has not restored yet: StartContainer restores them
// (runc restore under conmon) instead of starting the image's command.
type Restore struct {
	Archive        string    `json:"archive"`        // as CreateContainer named it
	Images         string    `json:"images"`         // CRIU's images, unpacked
	FromID         string    `json:"fromID"`         // the checkpointed container
	CheckpointedAt time.Time `json:"checkpointedAt"` // when it was
}

// restorePlan is what CreateContainer learned from a checkpoint archive.
type restorePlan struct {
	archive   string
	source    string // what the request named: the archive, or a checkpoint image
	config    *checkpoint.Config
	spec      *specs.Spec
	imageName string // the image as the checkpointed container named it
}

// isCheckpointArchive tells an image name from a checkpoint archive's
// path: an absolute path to a regular file. (Image references are never
// absolute paths.)
func isCheckpointArchive(image string) bool {
	if !filepath.IsAbs(image) {
		return false
	}
	fi, err := os.Stat(image)
	return err == nil && fi.Mode().IsRegular()
}

// planRestore reads the archive's metadata and turns the request into the
// checkpointed container's, as CRI-O does: the image and the process
// (command, environment, working directory, user) are the checkpoint's;
// name, attempt, labels, mounts, resources and security settings the
// request's; annotations the checkpoint's updated with the request's.
// Every mount the checkpointed container had must be given again (its
// host path may differ): a checkpoint never mounts a host path the
// request did not ask for.
func (s *Service) planRestore(ctx context.Context, req *CreateRequest) (*restorePlan, error) {
	archive, strict := req.Checkpoint, req.Checkpoint != ""
	if !strict {
		archive = req.Image
	}
	if s.opts.CRIU == nil {
		return nil, fmt.Errorf("restore from %s: checkpoint/restore is not configured: %w", archive, errdefs.ErrFailedPrecondition)
	}
	if err := s.opts.CRIU.Check(ctx); err != nil {
		return nil, fmt.Errorf("restore from %s: %w", archive, err)
	}
	f, err := os.Open(archive)
	if err != nil {
		return nil, fmt.Errorf("open checkpoint archive: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	defer f.Close()
	members, err := checkpoint.ReadMembers(f, checkpoint.ConfigDumpFile, checkpoint.SpecDumpFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", archive, err)
	}
	cfg, err := checkpoint.ReadConfig(members[checkpoint.ConfigDumpFile])
	if err != nil {
		return nil, err
	}
	var sp specs.Spec
	if err := json.Unmarshal(members[checkpoint.SpecDumpFile], &sp); err != nil || sp.Process == nil {
		return nil, fmt.Errorf("%s: %s is not an OCI spec with a process: %w", archive, checkpoint.SpecDumpFile, errdefs.ErrInvalidArgument)
	}
	if sp.Process.Terminal {
		return nil, fmt.Errorf("%s: the checkpointed container had a terminal: %w", archive, errdefs.ErrInvalidArgument)
	}
	if strict {
		if err := s.matchCheckpoint(ctx, req, cfg, sp.Process); err != nil {
			return nil, fmt.Errorf("restore container %q: %w", req.Name, err)
		}
	}
	req.Image = archive
	plan := &restorePlan{archive: req.Image, config: cfg, spec: &sp, imageName: cfg.RootfsImageName}
	given := map[string]bool{}
	for _, m := range req.Mounts {
		given[filepath.Clean(m.ContainerPath)] = true
	}
	for _, v := range req.ImageVolumes {
		given[filepath.Clean(v.ContainerPath)] = true
	}
	var missing []string
	for _, p := range cfg.Mounts {
		if !given[filepath.Clean(p)] {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("restore from %s needs these mounts in the request, as the checkpointed container had them: %s: %w",
			req.Image, strings.Join(missing, ", "), errdefs.ErrInvalidArgument)
	}
	switch {
	case cfg.RootfsImageRef != "":
		req.Image = cfg.RootfsImageRef
	case cfg.RootfsImageName != "":
		req.Image = cfg.RootfsImageName
	default:
		return nil, fmt.Errorf("%s names no image: %w", checkpoint.ConfigDumpFile, errdefs.ErrInvalidArgument)
	}
	if plan.imageName == "" {
		plan.imageName = req.Image
	}
	req.Command, req.Args = sp.Process.Args, nil
	req.WorkingDir = sp.Process.Cwd
	annotations := maps.Clone(cfg.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	maps.Copy(annotations, req.Annotations)
	req.Annotations = annotations
	if req.StopSignal == "" {
		req.StopSignal = cfg.StopSignal
	}
	return plan, nil
}

// matchCheckpoint checks what a strict restore's request says of the
// checkpointed process against the checkpoint: api.proto (RestorePod) has
// the image, command, arguments, working directory, environment and
// credentials describe the expected process, and any mismatch the runtime
// can see fail the restore. What the request leaves empty is not checked.
func (s *Service) matchCheckpoint(ctx context.Context, req *CreateRequest, cfg *checkpoint.Config, p *specs.Process) error {
	bad := func(what string, got, want any) error {
		return fmt.Errorf("%s %v does not match the checkpoint's %v: %w", what, got, want, errdefs.ErrInvalidArgument)
	}
	if req.Image != "" {
		img, err := s.opts.Images.Status(ctx, req.Image)
		if errors.Is(err, errdefs.ErrNotFound) {
			return fmt.Errorf("image %q is not present: pull it first: %w", req.Image, errdefs.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if want := cfg.RootfsImageRef; want != "" && img.ID.String() != want {
			return bad("image "+req.Image, img.ID.String(), want)
		}
	}
	in := req
	switch {
	case len(in.Command) > 0:
		if want := append(slices.Clone(in.Command), in.Args...); !slices.Equal(want, p.Args) {
			return bad("command and args", want, p.Args)
		}
	case len(in.Args) > 0:
		// The image's entrypoint comes first.
		if len(p.Args) < len(in.Args) || !slices.Equal(p.Args[len(p.Args)-len(in.Args):], in.Args) {
			return bad("args", in.Args, p.Args)
		}
	}
	if in.WorkingDir != "" && in.WorkingDir != p.Cwd {
		return bad("working_dir", in.WorkingDir, p.Cwd)
	}
	for _, kv := range in.Env {
		if !slices.Contains(p.Env, kv) {
			k, _, _ := strings.Cut(kv, "=")
			return fmt.Errorf("environment variable %s: not in the checkpointed process's environment, or with another value: %w", k, errdefs.ErrInvalidArgument)
		}
	}
	if u := in.Security.RunAsUser; u != nil && uint32(*u) != p.User.UID {
		return bad("run_as_user", *u, p.User.UID)
	}
	if g := in.Security.RunAsGroup; g != nil && uint32(*g) != p.User.GID {
		return bad("run_as_group", *g, p.User.GID)
	}
	return nil
}

// checkpointImageArchive makes a checkpoint archive of ref when ref is a
// checkpoint image (checkpoint.ImageAnnotation): the files of its layer,
// which are the archive's, tarred into a work directory that cleanup
// removes. It returns "" for any other image, or one not present (the
// caller reports that as for any image).
func (s *Service) checkpointImageArchive(ctx context.Context, ref string) (archive string, cleanup func(), err error) {
	if ref == "" {
		return "", nil, nil
	}
	img, err := s.opts.Images.Status(ctx, ref)
	if err != nil || img.Config == nil || !checkpoint.IsCheckpointImage(img.Annotations, img.Config.Config.Labels) {
		return "", nil, nil
	}
	if s.opts.CRIU == nil {
		return "", nil, fmt.Errorf("restore from checkpoint image %s: checkpoint/restore is not configured: %w", ref, errdefs.ErrFailedPrecondition)
	}
	if err := s.opts.CRIU.Check(ctx); err != nil {
		return "", nil, fmt.Errorf("restore from checkpoint image %s: %w", ref, err)
	}
	root, err := s.opts.Images.MountImage(img.ID)
	if err != nil {
		return "", nil, fmt.Errorf("mount checkpoint image %s: %w", ref, err)
	}
	defer func() {
		if err := s.opts.Images.UnmountImage(img.ID); err != nil {
			s.log.Warn("unmount a checkpoint image", "image", ref, "err", err)
		}
	}()
	work, err := s.CheckpointWorkDir("image")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(work) }
	archive = filepath.Join(work, "checkpoint.tar")
	f, err := os.OpenFile(archive, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		err = checkpoint.Write(f, root)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("checkpoint image %s: %v: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	return archive, cleanup, nil
}

// imageMissing words a restore's missing image: the checkpoint does not
// carry the image's layers, only its changes to them.
func (p *restorePlan) imageMissing(err error) error {
	return fmt.Errorf("the image of checkpoint %s, %q (%s), is not present: pull it first: %w", p.archive, p.imageName, p.config.RootfsImageRef, err)
}

// unpack puts the archive's CRIU images and file changes in dir, and
// applies the file changes to container id's writable layer.
func (s *Service) unpackRestore(p *restorePlan, id, dir string) (*Restore, error) {
	f, err := os.Open(p.archive)
	if err != nil {
		return nil, fmt.Errorf("open checkpoint archive: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	defer f.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := checkpoint.Extract(f, dir); err != nil {
		return nil, fmt.Errorf("unpack %s: %w", p.archive, err)
	}
	images := filepath.Join(dir, checkpoint.ImagesDir)
	if fi, err := os.Stat(images); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%s has no %s/ of CRIU images: %w", p.archive, checkpoint.ImagesDir, errdefs.ErrInvalidArgument)
	}
	var deleted []string
	if data, err := os.ReadFile(filepath.Join(dir, checkpoint.DeletedFilesFile)); err == nil {
		if deleted, err = checkpoint.ParseDeleted(data); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	files, err := os.Open(filepath.Join(dir, checkpoint.RootfsDiffFile))
	if errors.Is(err, fs.ErrNotExist) && len(deleted) == 0 {
		files, err = nil, nil // nothing changed
	} else if err != nil {
		return nil, fmt.Errorf("%s: %w", checkpoint.RootfsDiffFile, err)
	}
	if files != nil {
		defer files.Close()
		pr, pw := io.Pipe()
		safego.Go(s.log, "join checkpoint diff", func() { pw.CloseWithError(checkpoint.JoinDiff(files, deleted, pw)) })
		err := s.opts.Images.ApplyWritableLayerDiff(id, pr)
		pr.CloseWithError(err)
		if err != nil {
			return nil, err
		}
	}
	source := p.source
	if source == "" {
		source = p.archive
	}
	return &Restore{Archive: source, Images: images, FromID: p.config.ID, CheckpointedAt: p.config.CheckpointedAt}, nil
}

// applyRestoredProcess gives the spec the checkpointed process's command,
// environment, directory and user: runc restore checks them, and status
// reports them; CRIU restores the process itself.
func applyRestoredProcess(sp *specs.Spec, p *restorePlan) {
	if sp.Process == nil || p.spec.Process == nil {
		return
	}
	sp.Process.Args = slices.Clone(p.spec.Process.Args)
	sp.Process.Env = slices.Clone(p.spec.Process.Env)
	sp.Process.Cwd = p.spec.Process.Cwd
	sp.Process.User = p.spec.Process.User
}

// startRestore is Start for a container made from a checkpoint: conmon
// runs runc restore, and the container is running when it returns.
func (s *Service) startRestore(ctx context.Context, c *Container, startedAt time.Time) error {
	rt := s.runtimeOf(c)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 4*time.Minute)
	defer cancel()
	pid, err := rt.Create(rctx, oci.CreateOptions{ID: c.ID, Name: c.Name, Spec: c.Spec, LogPath: s.logFile(c),
		Stdin: c.Stdin, StdinOnce: c.StdinOnce, RestoreFrom: c.Restore.Images,
		PlaceMonitor: s.monitorPlacer(filepath.Dir(c.CgroupPath), c.ID)})
	if err != nil {
		return fmt.Errorf("start container %s: %w", c.ID, err)
	}
	images := c.Restore.Images
	if _, err := s.update(c.ID, func(c *Container) error {
		c.State, c.StartedAt, c.Pid = Running, startedAt, pid
		c.RestoredFrom, c.Restore = c.Restore, nil
		return nil
	}); err != nil {
		return err
	}
	// The images are no longer needed (the archive is the caller's).
	if err := os.RemoveAll(filepath.Dir(images)); err != nil {
		s.log.Warn("remove a restored checkpoint's images", "container", c.ID, "err", err)
	}
	s.log.Info("container restored", "container", c.ID, "from", c.Restore.Archive, "pid", pid)
	return nil
}
