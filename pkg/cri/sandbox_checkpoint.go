package cri

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/podcheckpoint"
)

// CheckpointPod writes one archive of the pod's selected containers, all
// dumped while all are frozen (KEP-5823), into the request's empty
// directory; the containers keep running.
func (s *runtimeService) CheckpointPod(ctx context.Context, req *runtimeapi.CheckpointPodRequest) (*runtimeapi.CheckpointPodResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, fmt.Errorf("pod_sandbox_id is required: %w", errdefs.ErrInvalidArgument)
	}
	if err := noOptions(req.GetOptions()); err != nil {
		return nil, err
	}
	if s.opts.PodCheckpoints == nil {
		return nil, fmt.Errorf("pod checkpoints are not configured: %w", errdefs.ErrFailedPrecondition)
	}
	if err := s.opts.PodCheckpoints.Checkpoint(ctx, podcheckpoint.CheckpointRequest{
		PodID: req.GetPodSandboxId(), OutputDir: req.GetOutputPath(), ContainerIDs: req.GetContainerIds(),
	}); err != nil {
		return nil, err
	}
	return &runtimeapi.CheckpointPodResponse{}, nil
}

// RestorePod makes a new pod from a CheckpointPod's archive, with one
// created container per checkpointed one; StartContainer on each restores
// its processes.
func (s *runtimeService) RestorePod(ctx context.Context, req *runtimeapi.RestorePodRequest) (*runtimeapi.RestorePodResponse, error) {
	if err := noOptions(req.GetOptions()); err != nil {
		return nil, err
	}
	rreq := podcheckpoint.RestoreRequest{CheckpointDir: req.GetCheckpointPath(), Handler: req.GetRuntimeHandler()}
	if h := req.GetRuntimeHandler(); h != "" && !slices.Contains(s.opts.Handlers, h) {
		return nil, fmt.Errorf("runtime handler %q is not configured (have %s): %w", h, strings.Join(s.opts.Handlers, ", "), errdefs.ErrInvalidArgument)
	}
	if c := req.GetConfig(); c != nil {
		cfg, err := s.podConfig(c, req.GetRuntimeHandler())
		if err != nil {
			return nil, err
		}
		rreq.Pod = &cfg
	}
	for i, c := range req.GetContainerConfigs() {
		creq, err := createRequest(&runtimeapi.CreateContainerRequest{Config: c})
		if err != nil {
			return nil, fmt.Errorf("container_configs[%d]: %w", i, err)
		}
		rreq.Containers = append(rreq.Containers, creq)
	}
	if s.opts.PodCheckpoints == nil {
		return nil, fmt.Errorf("pod checkpoints are not configured: %w", errdefs.ErrFailedPrecondition)
	}
	r, err := s.opts.PodCheckpoints.Restore(ctx, rreq)
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.RestorePodResponse{PodSandboxId: r.PodID}
	for _, c := range r.Containers {
		resp.RestoredContainers = append(resp.RestoredContainers, &runtimeapi.RestoredContainer{Name: c.Name, ContainerId: c.ID})
	}
	return resp, nil
}

// noOptions rejects runtime-specific options: api.proto has unsupported
// keys rejected rather than ignored, and this runtime supports none.
func noOptions(o map[string]string) error {
	if len(o) == 0 {
		return nil
	}
	return fmt.Errorf("options %s: this runtime supports no checkpoint options: %w", strings.Join(slices.Sorted(maps.Keys(o)), ", "), errdefs.ErrInvalidArgument)
}
