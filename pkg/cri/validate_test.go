package cri

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func TestValidateRequest(t *testing.T) {
	meta := &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "ns", Uid: "u"}
	cconf := &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: "busybox"}}
	for _, tc := range []struct {
		name  string
		req   any
		field string // "" = valid
	}{
		{"version", &runtimeapi.VersionRequest{}, ""},
		{"list pods", &runtimeapi.ListPodSandboxRequest{}, ""},
		{"run pod: no config", &runtimeapi.RunPodSandboxRequest{}, "config"},
		{"run pod: no metadata", &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{}}, "config.metadata"},
		{"run pod: no uid", &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "ns"}}}, "config.metadata.uid"},
		{"run pod: ok", &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{Metadata: meta}}, ""},
		{"stop pod", &runtimeapi.StopPodSandboxRequest{}, "pod_sandbox_id"},
		{"port forward", &runtimeapi.PortForwardRequest{}, "pod_sandbox_id"},
		{"create: no pod", &runtimeapi.CreateContainerRequest{}, "pod_sandbox_id"},
		{"create: no image", &runtimeapi.CreateContainerRequest{PodSandboxId: "p", Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "c"}}}, "config.image.image"},
		{"create: no sandbox config", &runtimeapi.CreateContainerRequest{PodSandboxId: "p", Config: cconf}, "sandbox_config"},
		{"create: ok", &runtimeapi.CreateContainerRequest{PodSandboxId: "p", Config: cconf, SandboxConfig: &runtimeapi.PodSandboxConfig{}}, ""},
		{"start", &runtimeapi.StartContainerRequest{}, "container_id"},
		{"container status", &runtimeapi.ContainerStatusRequest{ContainerId: "c"}, ""},
		{"exec sync: no cmd", &runtimeapi.ExecSyncRequest{ContainerId: "c"}, "cmd"},
		{"exec: no stream", &runtimeapi.ExecRequest{ContainerId: "c", Cmd: []string{"sh"}}, "stdin, stdout or stderr"},
		{"exec: tty with stderr", &runtimeapi.ExecRequest{ContainerId: "c", Cmd: []string{"sh"}, Tty: true, Stdout: true, Stderr: true}, "stderr"},
		{"exec: ok", &runtimeapi.ExecRequest{ContainerId: "c", Cmd: []string{"sh"}, Tty: true, Stdout: true}, ""},
		{"attach: no id", &runtimeapi.AttachRequest{Stdout: true}, "container_id"},
		{"attach: no stream", &runtimeapi.AttachRequest{ContainerId: "c"}, "stdin, stdout or stderr"},
		{"pull: no spec", &runtimeapi.PullImageRequest{}, "image.image"},
		{"image status: empty name", &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{}}, "image.image"},
		{"remove image: ok", &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: "x"}}, ""},
		{"update runtime config", &runtimeapi.UpdateRuntimeConfigRequest{}, "runtime_config"},
		{"restore pod", &runtimeapi.RestorePodRequest{}, "checkpoint_path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validateRequest(tc.req)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("validateRequest() = %v; want nil", err)
				}
				return
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.HasPrefix(err.Error(), tc.field+" ") {
				t.Fatalf("validateRequest() = %v; want InvalidArgument naming %q", err, tc.field)
			}
		})
	}
}

func TestSecondsSaturates(t *testing.T) {
	for _, tc := range []struct {
		in   int64
		want time.Duration
	}{
		{0, 0}, {-5, 0}, {30, 30 * time.Second},
		{math.MaxInt64, time.Duration(math.MaxInt64/time.Second) * time.Second},
		{10_000_000_000, time.Duration(math.MaxInt64/time.Second) * time.Second}, // 317 years
	} {
		if got := seconds(tc.in); got != tc.want || got < 0 {
			t.Errorf("seconds(%d) = %v; want %v", tc.in, got, tc.want)
		}
	}
}
