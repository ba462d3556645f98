// Package podcheckpoint checkpoints a pod's containers as one consistent
// cut into one archive (CheckpointPod), and brings the pod back from it
// (RestorePod), on top of the container service's pause, dump and
// restore. The archive's layout is package checkpoint's.
package podcheckpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/checkpoint"
	"github.com/cri-runtime/cri-runtime/pkg/cleanup"
	"github.com/cri-runtime/cri-runtime/pkg/container"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/sandbox"
)

// Pods is what pod checkpoints need of the pod service (sandbox.Manager).
type Pods interface {
	Get(id string) (*sandbox.Sandbox, error)
	Run(ctx context.Context, cfg sandbox.Config) (*sandbox.Sandbox, error)
}

// PodRemover stops a pod and removes it with its containers
// (pod.Coordinator): what a failed restore made goes that way.
type PodRemover interface {
	Remove(ctx context.Context, id string) error
}

// Containers is what pod checkpoints need of the container service
// (container.Service).
type Containers interface {
	Get(id string) (*container.Container, error)
	CheckCheckpointable(ctx context.Context, id string) error
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
	Dump(ctx context.Context, id, dir string) error
	Create(ctx context.Context, req container.CreateRequest) (*container.Container, error)
	CheckpointWorkDir(prefix string) (string, error)
	ArchiveForbidden() []string
}

var _ Containers = (*container.Service)(nil)

// Gate admits work into a ready pod and holds off its stop and removal
// until released (pod.Gate).
type Gate interface {
	Admit(id string) (release func(), err error)
}

// Options configure the Service.
type Options struct {
	Pods       Pods
	PodRemover PodRemover
	// Gate keeps the pod from being stopped or removed while its
	// containers are frozen for a checkpoint.
	Gate       Gate
	Containers Containers
	// CRIU says whether restore works here (nil: it does not).
	CRIU CRIU
	// DefaultHandler is the runtime handler of pods that name none.
	DefaultHandler string
}

// CRIU says whether checkpoint and restore work here (oci.CRIU).
type CRIU interface {
	Check(ctx context.Context) error
}

// Service checkpoints and restores pods. Safe for concurrent use: it keeps
// no state of its own; the pod and container services serialize what
// touches one container.
type Service struct {
	opts Options
	log  *slog.Logger
}

// New returns the Service.
func New(opts Options, log *slog.Logger) *Service { return &Service{opts: opts, log: log} }

// CheckpointRequest asks for a pod checkpoint (api.proto
// CheckpointPodRequest).
type CheckpointRequest struct {
	PodID        string
	OutputDir    string   // an existing, empty directory
	ContainerIDs []string // the running containers to include
}

// Checkpoint writes one archive (checkpoint.PodArchiveFile) of the pod's
// selected containers into the request's directory. The containers keep
// running.
//
// The cut is consistent: every selected container is paused (the cgroup
// freezer, runc pause) before any is dumped, all stay frozen while CRIU
// dumps each (it finds the cgroup frozen and leaves it so) and their
// writable layers' changes are read, and all are resumed before Checkpoint
// returns, on success, error or deadline alike (api.proto). So no
// container runs, writes a file or sends another a message between the
// first dump and the last. Tarring the dumped files happens after the
// thaw: it reads only copies.
//
// Nothing is produced unless every container qualifies; a failure removes
// what was written (the archive appears whole or not at all).
func (s *Service) Checkpoint(ctx context.Context, req CheckpointRequest) error {
	dir, err := checkpoint.DirLocation(req.OutputDir, s.opts.Containers.ArchiveForbidden(), true)
	if err != nil {
		return err
	}
	pod, ids, err := s.checkpointable(ctx, req)
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, container.DefaultCheckpointTimeout)
		defer cancel()
	}
	work, err := s.opts.Containers.CheckpointWorkDir("pod-" + pod.ID[:12])
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	start := time.Now()
	if err := s.dumpAdmitted(ctx, pod.ID, ids, work); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("checkpoint pod %s: not done in time: %v: %w", pod.ID, err, ctx.Err())
		}
		return fmt.Errorf("checkpoint pod %s: %w", pod.ID, err)
	}
	frozen := time.Since(start)

	// The archive's tree: pod.dump and one archive per container.
	tree := filepath.Join(work, "pod")
	if err := os.MkdirAll(filepath.Join(tree, checkpoint.ContainersDir), 0o700); err != nil {
		return err
	}
	handler := pod.Config.RuntimeHandler
	if handler == "" {
		handler = s.opts.DefaultHandler
	}
	cfgJSON, err := json.Marshal(pod.Config)
	if err != nil {
		return err
	}
	pc := checkpoint.PodConfig{ID: pod.ID, Name: pod.Config.Metadata.Name, Namespace: pod.Config.Metadata.Namespace,
		UID: pod.Config.Metadata.UID, RuntimeHandler: handler, CheckpointedAt: start, Config: cfgJSON}
	for _, c := range ids {
		member := checkpoint.PodContainer{Name: c.Name, ID: c.ID}
		pc.Containers = append(pc.Containers, member)
		if err := tarFile(filepath.Join(work, c.ID), filepath.Join(tree, filepath.FromSlash(member.Member()))); err != nil {
			return err
		}
		if err := os.RemoveAll(filepath.Join(work, c.ID)); err != nil { // its copy is in the tar
			return err
		}
	}
	data, err := json.MarshalIndent(pc, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tree, checkpoint.PodDumpFile), data, 0o600); err != nil {
		return err
	}
	out := filepath.Join(dir, checkpoint.PodArchiveFile)
	if err := tarFile(tree, out); err != nil {
		return err
	}
	s.log.Info("pod checkpointed", "pod", pod.ID, "containers", len(ids), "archive", out,
		"frozen", frozen.Round(time.Millisecond), "total", time.Since(start).Round(time.Millisecond))
	return nil
}

// checkpointable checks the request against the pod and its containers
// before anything is paused: the pod is ready and does not share one PID
// namespace, and the containers are distinct, the pod's, running, without
// a terminal, and CRIU works here.
func (s *Service) checkpointable(ctx context.Context, req CheckpointRequest) (*sandbox.Sandbox, []*container.Container, error) {
	if len(req.ContainerIDs) == 0 {
		return nil, nil, fmt.Errorf("container_ids: a pod checkpoint needs at least one container: %w", errdefs.ErrInvalidArgument)
	}
	pod, err := s.opts.Pods.Get(req.PodID)
	if err != nil {
		return nil, nil, err
	}
	if pod.State != sandbox.Ready {
		return nil, nil, fmt.Errorf("pod %s is %s: only a ready pod can be checkpointed: %w", pod.ID, pod.State, errdefs.ErrFailedPrecondition)
	}
	if pod.Config.PIDMode == sandbox.PIDPod {
		// The shared namespace's init process is the pod's, not a
		// container's: CRIU would have to dump it with every container.
		return nil, nil, fmt.Errorf("pod %s shares one PID namespace among its containers, which cannot be checkpointed: %w", pod.ID, errdefs.ErrFailedPrecondition)
	}
	seen := map[string]bool{}
	var out []*container.Container
	for _, id := range req.ContainerIDs {
		c, err := s.opts.Containers.Get(id)
		if err != nil {
			return nil, nil, err
		}
		if c.PodID != pod.ID {
			return nil, nil, fmt.Errorf("container %s belongs to pod %s, not %s: %w", c.ID, c.PodID, pod.ID, errdefs.ErrInvalidArgument)
		}
		if seen[c.ID] {
			return nil, nil, fmt.Errorf("container_ids: %s is given twice: %w", c.ID, errdefs.ErrInvalidArgument)
		}
		seen[c.ID] = true
		out = append(out, c)
	}
	// Whether each can be checkpointed (and CRIU works) once the request
	// itself is known to be sound.
	for _, c := range out {
		if err := s.opts.Containers.CheckCheckpointable(ctx, c.ID); err != nil {
			return nil, nil, err
		}
	}
	return pod, out, nil
}

// dumpAdmitted is dumpFrozen with the pod held: a StopPodSandbox or
// RemovePodSandbox asked for meanwhile waits until the containers are
// thawed, rather than killing them frozen, mid-dump. The pod must still
// be ready (FailedPrecondition when it was stopped since it was checked).
func (s *Service) dumpAdmitted(ctx context.Context, podID string, cs []*container.Container, work string) error {
	release, err := s.opts.Gate.Admit(podID)
	if err != nil {
		return err
	}
	defer release()
	return s.dumpFrozen(ctx, cs, work)
}

// dumpFrozen pauses every container, dumps each into work/<id>, and
// resumes them all, whatever happens: a pod is never left frozen. The
// resumes run even when the request's own deadline has passed (the
// cleanup stack gives them a bounded context of their own), and a resume
// that fails fails the call.
func (s *Service) dumpFrozen(ctx context.Context, cs []*container.Container, work string) (retErr error) {
	var paused []string
	defer func() {
		// First frozen, first thawed: pushed last first, as the stack
		// runs them.
		resume := cleanup.New(s.log, "resume the containers after their pod's checkpoint")
		for i := len(paused) - 1; i >= 0; i-- {
			id := paused[i]
			resume.Push("resume container "+id, func(ctx context.Context) error { return s.opts.Containers.Resume(ctx, id) })
		}
		if err := resume.Run(ctx); err != nil {
			retErr = errors.Join(retErr, err)
		}
	}()
	for _, c := range cs {
		if err := s.opts.Containers.Pause(ctx, c.ID); err != nil {
			return err
		}
		paused = append(paused, c.ID)
	}
	for _, c := range cs {
		d := filepath.Join(work, c.ID)
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
		if err := s.opts.Containers.Dump(ctx, c.ID, d); err != nil {
			return fmt.Errorf("container %s (%s): %w", c.ID, c.Name, err)
		}
	}
	return nil
}

// tarFile writes the tree at dir as a tar at path: a temporary file beside
// it, synced, then renamed, so that path appears whole or not at all.
// Mode 0600: checkpoints hold the containers' memory.
func tarFile(dir, path string) (retErr error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if retErr != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := checkpoint.Write(f, dir); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
