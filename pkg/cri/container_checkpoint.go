package cri

import (
	"context"
	"fmt"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/container"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// CheckpointContainer writes a running container's checkpoint archive at
// the request's location (KEP-2008, forensic checkpointing); the container
// keeps running. A CreateContainer whose image is the archive's path
// restores it.
func (s *runtimeService) CheckpointContainer(ctx context.Context, req *runtimeapi.CheckpointContainerRequest) (*runtimeapi.CheckpointContainerResponse, error) {
	if req.GetContainerId() == "" {
		return nil, fmt.Errorf("container_id is required: %w", errdefs.ErrInvalidArgument)
	}
	if req.GetTimeout() < 0 {
		return nil, fmt.Errorf("timeout %d: must not be negative: %w", req.GetTimeout(), errdefs.ErrInvalidArgument)
	}
	const maxTimeout = int64(24 * time.Hour / time.Second)
	timeout := time.Duration(min(req.GetTimeout(), maxTimeout)) * time.Second
	if err := s.opts.Containers.Checkpoint(ctx, container.CheckpointRequest{ID: req.GetContainerId(), Location: req.GetLocation(), Timeout: timeout}); err != nil {
		return nil, err
	}
	return &runtimeapi.CheckpointContainerResponse{}, nil
}
