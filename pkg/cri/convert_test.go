package cri

import (
	"errors"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Requests the OCI runtime or the kernel would refuse later, with an
// error the kubelet sees as Unknown, are refused here as InvalidArgument.
func TestConversionsRefuseBadValues(t *testing.T) {
	pod := func(change func(*runtimeapi.PodSandboxConfig)) *runtimeapi.PodSandboxConfig {
		c := &runtimeapi.PodSandboxConfig{
			Metadata:     &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "n", Uid: "u"},
			Hostname:     "p",
			LogDirectory: "/var/log/pods/p",
		}
		change(c)
		return c
	}
	for _, tc := range []struct {
		name string
		cfg  *runtimeapi.PodSandboxConfig
		ok   bool
	}{
		{"good", pod(func(*runtimeapi.PodSandboxConfig) {}), true},
		{"no log directory", pod(func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "" }), true},
		{"relative log directory", pod(func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "var/log/pods/p" }), false},
		{"dot log directory", pod(func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "." }), false},
		{"64-byte hostname", pod(func(c *runtimeapi.PodSandboxConfig) { c.Hostname = strings.Repeat("h", 64) }), true},
		{"65-byte hostname", pod(func(c *runtimeapi.PodSandboxConfig) { c.Hostname = strings.Repeat("h", 65) }), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sandboxConfig(tc.cfg)
			if tc.ok && err != nil || !tc.ok && !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("sandboxConfig = %v; want ok=%v (else InvalidArgument)", err, tc.ok)
			}
		})
	}

	for mode, ok := range map[runtimeapi.NamespaceMode]bool{
		runtimeapi.NamespaceMode_POD: true, runtimeapi.NamespaceMode_CONTAINER: true, runtimeapi.NamespaceMode_NODE: true,
		runtimeapi.NamespaceMode_TARGET: true, 9: false, -1: false,
	} {
		req := &runtimeapi.CreateContainerRequest{PodSandboxId: "p", Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: "i"},
			Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: mode},
			}},
		}}
		_, err := createRequest(req)
		if ok && err != nil || !ok && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("createRequest with pid mode %d = %v; want ok=%v (else InvalidArgument)", mode, err, ok)
		}
	}
}
