package cri

import (
	"context"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/podcheckpoint"
)

// fakePodCheckpoints records the requests it gets; a pod named "missing"
// is NotFound.
type fakePodCheckpoints struct {
	checkpoint *podcheckpoint.CheckpointRequest
	restore    *podcheckpoint.RestoreRequest
}

func (f *fakePodCheckpoints) Checkpoint(_ context.Context, req podcheckpoint.CheckpointRequest) error {
	f.checkpoint = &req
	if req.PodID == "missing" {
		return errdefs.ErrNotFound
	}
	return nil
}

func (f *fakePodCheckpoints) Restore(_ context.Context, req podcheckpoint.RestoreRequest) (*podcheckpoint.Restored, error) {
	f.restore = &req
	out := &podcheckpoint.Restored{PodID: "newpod"}
	for i, c := range req.Containers {
		out.Containers = append(out.Containers, podcheckpoint.RestoredContainer{Name: c.Name, ID: "ctr" + string(rune('0'+i))})
	}
	return out, nil
}

var _ PodCheckpoints = (*fakePodCheckpoints)(nil)

func TestCheckpointPodAndRestorePod(t *testing.T) {
	fake := &fakePodCheckpoints{}
	opts := testOptions()
	opts.PodCheckpoints = fake
	rt := runtimeapi.NewRuntimeServiceClient(dial(t, NewServer(opts)))
	ctx := context.Background()

	for _, tc := range []struct {
		name string
		req  *runtimeapi.CheckpointPodRequest
		want codes.Code
	}{
		{"no pod", &runtimeapi.CheckpointPodRequest{OutputPath: "/tmp/x", ContainerIds: []string{"a"}}, codes.InvalidArgument},
		{"options", &runtimeapi.CheckpointPodRequest{PodSandboxId: "p", OutputPath: "/tmp/x", ContainerIds: []string{"a"},
			Options: map[string]string{"tcp-established": "true"}}, codes.InvalidArgument},
		{"unknown pod", &runtimeapi.CheckpointPodRequest{PodSandboxId: "missing", OutputPath: "/tmp/x", ContainerIds: []string{"a"}}, codes.NotFound},
		{"served", &runtimeapi.CheckpointPodRequest{PodSandboxId: "p", OutputPath: "/tmp/x", ContainerIds: []string{"a", "b"}}, codes.OK},
	} {
		t.Run("CheckpointPod "+tc.name, func(t *testing.T) {
			if _, err := rt.CheckpointPod(ctx, tc.req); status.Code(err) != tc.want {
				t.Fatalf("CheckpointPod = %v; want %v", err, tc.want)
			}
		})
	}
	if c := fake.checkpoint; c == nil || c.PodID != "p" || c.OutputDir != "/tmp/x" || !slices.Equal(c.ContainerIDs, []string{"a", "b"}) {
		t.Errorf("the service got %+v", c)
	}

	ctr := func(name string) *runtimeapi.ContainerConfig {
		return &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: name},
			Image: &runtimeapi.ImageSpec{Image: "busybox"}, Command: []string{"sh"}}
	}
	pod := &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "ns", Uid: "u2"}}
	for _, tc := range []struct {
		name string
		req  *runtimeapi.RestorePodRequest
		want codes.Code
	}{
		{"unknown handler", &runtimeapi.RestorePodRequest{CheckpointPath: "/cp", RuntimeHandler: "kata",
			ContainerConfigs: []*runtimeapi.ContainerConfig{ctr("a")}}, codes.InvalidArgument},
		{"options", &runtimeapi.RestorePodRequest{CheckpointPath: "/cp", Options: map[string]string{"x": "y"},
			ContainerConfigs: []*runtimeapi.ContainerConfig{ctr("a")}}, codes.InvalidArgument},
		{"bad pod config", &runtimeapi.RestorePodRequest{CheckpointPath: "/cp", ContainerConfigs: []*runtimeapi.ContainerConfig{ctr("a")},
			Config: &runtimeapi.PodSandboxConfig{LogDirectory: "relative"}}, codes.InvalidArgument},
		{"served", &runtimeapi.RestorePodRequest{CheckpointPath: "/cp", Config: pod, RuntimeHandler: "runc",
			ContainerConfigs: []*runtimeapi.ContainerConfig{ctr("a"), ctr("b")}}, codes.OK},
	} {
		t.Run("RestorePod "+tc.name, func(t *testing.T) {
			resp, err := rt.RestorePod(ctx, tc.req)
			if status.Code(err) != tc.want {
				t.Fatalf("RestorePod = %v; want %v", err, tc.want)
			}
			if err != nil {
				return
			}
			if resp.GetPodSandboxId() != "newpod" || len(resp.GetRestoredContainers()) != 2 ||
				resp.GetRestoredContainers()[1].GetName() != "b" || resp.GetRestoredContainers()[1].GetContainerId() != "ctr1" {
				t.Errorf("response %v", resp)
			}
		})
	}
	r := fake.restore
	if r == nil || r.CheckpointDir != "/cp" || r.Handler != "runc" || r.Pod == nil || r.Pod.Metadata.UID != "u2" || r.Pod.RuntimeHandler != "runc" ||
		len(r.Containers) != 2 || r.Containers[0].Name != "a" || r.Containers[0].Image != "busybox" || !slices.Equal(r.Containers[0].Command, []string{"sh"}) {
		t.Errorf("the service got %+v", r)
	}
}
