package podcheckpoint

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/checkpoint"
	"github.com/cri-runtime/cri-runtime/pkg/cleanup"
	"github.com/cri-runtime/cri-runtime/pkg/container"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/sandbox"
)

// RestoreRequest asks for a pod back from its checkpoint (api.proto
// RestorePodRequest).
type RestoreRequest struct {
	CheckpointDir string // where Checkpoint wrote the archive
	// Pod is the new pod's configuration; nil restores the checkpointed
	// pod's own (same metadata: the old pod must be gone).
	Pod *sandbox.Config
	// Handler is the runtime handler ("" for the default); it must be the
	// checkpoint's.
	Handler string
	// Containers are the restore-time configurations, one per container
	// of the checkpoint, matched by name. PodID and Checkpoint are filled
	// in here.
	Containers []container.CreateRequest
}

// Restored is the restored pod and its containers, by name, in the
// request's order.
type Restored struct {
	PodID      string
	Containers []RestoredContainer
}

// RestoredContainer is one container of a restored pod.
type RestoredContainer struct{ Name, ID string }

// Restore makes a new pod from the checkpoint's configuration (or the
// request's) and in it one container per checkpointed one, each created
// from its archive (the file changes applied, CRIU's images unpacked) but
// not started: api.proto has the caller start each, and StartContainer
// then restores its processes (runc restore) instead of running its
// command. On error nothing the call made is left behind.
func (s *Service) Restore(ctx context.Context, req RestoreRequest) (_ *Restored, retErr error) {
	dir, err := checkpoint.DirLocation(req.CheckpointDir, s.opts.Containers.ArchiveForbidden(), false)
	if err != nil {
		return nil, err
	}
	archive := filepath.Join(dir, checkpoint.PodArchiveFile)
	if fi, err := os.Stat(archive); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("checkpoint directory %s holds no pod checkpoint (%s): %w", dir, checkpoint.PodArchiveFile, errdefs.ErrInvalidArgument)
	}
	if err := requestNames(req.Containers); err != nil {
		return nil, err
	}
	if s.opts.CRIU == nil {
		return nil, fmt.Errorf("checkpoint/restore is not configured: %w", errdefs.ErrFailedPrecondition)
	}
	if err := s.opts.CRIU.Check(ctx); err != nil {
		return nil, err
	}
	pc, err := readPodDump(archive)
	if err != nil {
		return nil, err
	}
	cfg, err := s.restoredPodConfig(pc, req)
	if err != nil {
		return nil, err
	}
	byName := map[string]checkpoint.PodContainer{}
	for _, c := range pc.Containers {
		byName[c.Name] = c
	}
	if err := sameNames(pc, req.Containers); err != nil {
		return nil, err
	}

	start := time.Now()
	work, err := s.opts.Containers.CheckpointWorkDir("restore-pod")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work) // each container keeps what it needs
	f, err := os.Open(archive)
	if err != nil {
		return nil, fmt.Errorf("open %s: %v: %w", archive, err, errdefs.ErrInvalidArgument)
	}
	err = checkpoint.Extract(f, work)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("unpack %s: %w", archive, err)
	}

	sb, err := s.opts.Pods.Run(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// On failure the pod and the containers made so far go.
	undo := cleanup.New(s.log, "roll back a failed pod restore", "pod", sb.ID)
	defer undo.OnError(ctx, &retErr)
	undo.Push("remove the pod", func(ctx context.Context) error { return s.opts.PodRemover.Remove(ctx, sb.ID) })
	out := &Restored{PodID: sb.ID}
	for _, r := range req.Containers {
		member := byName[r.Name]
		r.PodID = sb.ID
		r.Checkpoint = filepath.Join(work, filepath.FromSlash(member.Member()))
		if fi, err := os.Stat(r.Checkpoint); err != nil || !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%s has no archive of container %q (%s): %w", archive, r.Name, member.Member(), errdefs.ErrInvalidArgument)
		}
		c, err := s.opts.Containers.Create(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("restore container %q: %w", r.Name, err)
		}
		out.Containers = append(out.Containers, RestoredContainer{Name: r.Name, ID: c.ID})
	}
	s.log.Info("pod restored", "pod", sb.ID, "from", pc.ID, "containers", len(out.Containers),
		"took", time.Since(start).Round(time.Millisecond))
	return out, nil
}

// requestNames checks the container configurations have non-empty,
// distinct names (api.proto).
func requestNames(cs []container.CreateRequest) error {
	if len(cs) == 0 {
		return fmt.Errorf("container_configs: a pod restore needs the configuration of every checkpointed container: %w", errdefs.ErrInvalidArgument)
	}
	seen := map[string]bool{}
	for _, c := range cs {
		if c.Name == "" {
			return fmt.Errorf("container_configs: every configuration needs a metadata name: %w", errdefs.ErrInvalidArgument)
		}
		if seen[c.Name] {
			return fmt.Errorf("container_configs: name %q is given twice: %w", c.Name, errdefs.ErrInvalidArgument)
		}
		seen[c.Name] = true
	}
	return nil
}

// sameNames checks the configurations name exactly the checkpoint's
// containers.
func sameNames(pc *checkpoint.PodConfig, cs []container.CreateRequest) error {
	var want, got []string
	for _, c := range pc.Containers {
		want = append(want, c.Name)
	}
	for _, c := range cs {
		got = append(got, c.Name)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		return fmt.Errorf("container_configs name %s; the checkpoint's containers are %s: %w",
			strings.Join(got, ", "), strings.Join(want, ", "), errdefs.ErrInvalidArgument)
	}
	return nil
}

func readPodDump(archive string) (*checkpoint.PodConfig, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, fmt.Errorf("open %s: %v: %w", archive, err, errdefs.ErrInvalidArgument)
	}
	defer f.Close()
	m, err := checkpoint.ReadMembers(f, checkpoint.PodDumpFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", archive, err)
	}
	return checkpoint.ReadPodConfig(m[checkpoint.PodDumpFile])
}

// restoredPodConfig is the new pod's configuration: the request's (or the
// checkpointed pod's), on the request's handler, which must be the
// checkpoint's. The namespaces the containers were dumped in must be of
// the same kinds: CRIU restores into a pod network or the node's, a PID
// namespace of the container's own, the same user namespace mappings.
func (s *Service) restoredPodConfig(pc *checkpoint.PodConfig, req RestoreRequest) (sandbox.Config, error) {
	var old sandbox.Config
	if err := json.Unmarshal(pc.Config, &old); err != nil {
		return old, fmt.Errorf("%s: the pod's configuration: %v: %w", checkpoint.PodDumpFile, err, errdefs.ErrInvalidArgument)
	}
	cfg := old
	if req.Pod != nil {
		cfg = *req.Pod
	}
	handler := req.Handler
	if handler == "" {
		handler = s.opts.DefaultHandler
	}
	if handler != pc.RuntimeHandler {
		return cfg, fmt.Errorf("runtime handler %q: the checkpoint was made with %q: %w", handler, pc.RuntimeHandler, errdefs.ErrInvalidArgument)
	}
	cfg.RuntimeHandler = req.Handler
	incompatible := func(what string, got, want any) (sandbox.Config, error) {
		return cfg, fmt.Errorf("pod configuration incompatible with the checkpoint: %s is %v, the checkpointed pod's %v: %w", what, got, want, errdefs.ErrInvalidArgument)
	}
	switch {
	case cfg.HostNetwork != old.HostNetwork:
		return incompatible("host network", cfg.HostNetwork, old.HostNetwork)
	case cfg.HostIPC != old.HostIPC:
		return incompatible("host IPC", cfg.HostIPC, old.HostIPC)
	case cfg.PIDMode != old.PIDMode:
		return incompatible("the PID namespace mode", cfg.PIDMode, old.PIDMode)
	case !reflect.DeepEqual(cfg.UserNS, old.UserNS):
		return incompatible("the user namespace", cfg.UserNS, old.UserNS)
	}
	return cfg, nil
}
