package cri

import (
	"errors"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// TestSandboxConfigUserNamespace: no options, or NODE, is the node's user
// namespace (POD is the enum's zero value, so an absent message must not
// read as POD); POD takes the kubelet's one mapping each; anything else is
// InvalidArgument.
func TestSandboxConfigUserNamespace(t *testing.T) {
	one := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 65536, Length: 65536}}
	for _, tc := range []struct {
		name    string
		opts    *runtimeapi.UserNamespace
		own     bool
		invalid bool
	}{
		{name: "absent"},
		{name: "node", opts: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}},
		{name: "pod", opts: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: one, Gids: one}, own: true},
		{name: "pod without mappings", opts: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD}, invalid: true},
		{name: "pod with uids only", opts: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: one}, invalid: true},
		{name: "container", opts: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_CONTAINER}, invalid: true},
		{name: "target", opts: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_TARGET}, invalid: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := sandboxConfig(&runtimeapi.PodSandboxConfig{
				Metadata: &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "n", Uid: "u"},
				Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
					NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: tc.opts},
				}},
			})
			if tc.invalid {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err = %v; want InvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if own := cfg.UserNS != nil; own != tc.own {
				t.Fatalf("own user namespace = %v; want %v (%+v)", own, tc.own, cfg.UserNS)
			}
			if tc.own && (cfg.UserNS.UIDs[0].HostID != 65536 || cfg.UserNS.GIDs[0].Size != 65536) {
				t.Errorf("mappings %+v", cfg.UserNS)
			}
		})
	}
}
