package cri

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/container"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/sandbox"
)

// StreamURLs hands out the one-time URLs of the streaming server
// (streaming.Server).
type StreamURLs interface {
	GetExec(*runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error)
	GetAttach(*runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error)
	GetPortForward(*runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error)
}

// Exec hands out a URL at which the client runs a command in a running
// container with its streams attached.
func (s *runtimeService) Exec(_ context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	c, err := s.runningContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	req = proto.Clone(req).(*runtimeapi.ExecRequest)
	req.ContainerId = c.ID // a prefix resolves now, not when the URL is used
	return s.opts.Streams.GetExec(req)
}

// Attach hands out a URL at which the client attaches to a running
// container's main process.
func (s *runtimeService) Attach(_ context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	c, err := s.runningContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	req = proto.Clone(req).(*runtimeapi.AttachRequest)
	req.ContainerId = c.ID
	return s.opts.Streams.GetAttach(req)
}

// PortForward hands out a URL at which the client forwards connections to
// ports inside a ready pod.
func (s *runtimeService) PortForward(_ context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	sb, err := s.opts.Sandboxes.Get(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	if sb.State != sandbox.Ready {
		return nil, fmt.Errorf("pod sandbox %s is not ready: %w", sb.ID, errdefs.ErrFailedPrecondition)
	}
	for _, p := range req.GetPort() {
		if p <= 0 || p > 65535 {
			return nil, fmt.Errorf("port %d is not a TCP port: %w", p, errdefs.ErrInvalidArgument)
		}
	}
	req = proto.Clone(req).(*runtimeapi.PortForwardRequest)
	req.PodSandboxId = sb.ID
	return s.opts.Streams.GetPortForward(req)
}

func (s *runtimeService) runningContainer(id string) (*container.Container, error) {
	c, err := s.opts.Containers.Get(id)
	if err != nil {
		return nil, err
	}
	if c.State != container.Running {
		return nil, fmt.Errorf("container %s is %s, not running: %w", c.ID, c.State, errdefs.ErrFailedPrecondition)
	}
	return c, nil
}
