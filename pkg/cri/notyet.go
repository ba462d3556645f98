package cri

import (
	"context"

	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// notYet lists the RPCs this runtime does not serve yet. Each answers
// Unimplemented; TestEveryRPCIsServedOrListed keeps this list and the code
// in step, and later work shrinks it to nothing.
var notYet = map[string]bool{
	"Exec":                true,
	"Attach":              true,
	"PortForward":         true,
	"UpdateRuntimeConfig": true,
	"CheckpointContainer": true,
	"CheckpointPod":       true,
	"RestorePod":          true,
}

func (*runtimeService) Exec(context.Context, *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	return nil, notImplemented("Exec")
}

func (*runtimeService) Attach(context.Context, *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	return nil, notImplemented("Attach")
}

func (*runtimeService) PortForward(context.Context, *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	return nil, notImplemented("PortForward")
}

func (*runtimeService) UpdateRuntimeConfig(context.Context, *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	return nil, notImplemented("UpdateRuntimeConfig")
}

func (*runtimeService) CheckpointContainer(context.Context, *runtimeapi.CheckpointContainerRequest) (*runtimeapi.CheckpointContainerResponse, error) {
	return nil, notImplemented("CheckpointContainer")
}

func (*runtimeService) CheckpointPod(context.Context, *runtimeapi.CheckpointPodRequest) (*runtimeapi.CheckpointPodResponse, error) {
	return nil, notImplemented("CheckpointPod")
}

func (*runtimeService) RestorePod(context.Context, *runtimeapi.RestorePodRequest) (*runtimeapi.RestorePodResponse, error) {
	return nil, notImplemented("RestorePod")
}

func notImplemented(rpc string) error {
	return fmt.Errorf("%s: %w by cri-runtime yet", rpc, errdefs.ErrUnimplemented)
}
