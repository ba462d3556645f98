package cri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/version"
)

// RuntimeName is what Version reports and crictl prints.
const RuntimeName = "cri-runtime"

// systemdCgroupDriver is the config's cgroup_driver value for systemd.
const systemdCgroupDriver = "systemd"

// kubeAPIVersion is the version of the kubelet's runtime API, which has not
// changed since the kubelet began asking.
const kubeAPIVersion = "0.1.0"

func (s *runtimeService) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version:           kubeAPIVersion,
		RuntimeName:       RuntimeName,
		RuntimeVersion:    version.String(),
		RuntimeApiVersion: "v1",
	}, nil
}

// Status reports RuntimeReady when the OCI runtime and the monitor run, and
// NetworkReady when a CNI network is configured and all of its plugins are
// installed. Verbose adds JSON documents for the configuration, the programs
// and the network.
func (s *runtimeService) Status(ctx context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	programs, progErr := s.opts.Programs.Probe(ctx)
	network, netErr := s.opts.Network.Network(ctx)
	resp := &runtimeapi.StatusResponse{
		Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
			condition(runtimeapi.RuntimeReady, progErr),
			condition(runtimeapi.NetworkReady, netErr),
		}},
		RuntimeHandlers: s.runtimeHandlers(),
		// The spec builder resolves groups itself, so Strict (only the
		// request's groups, none from the image's /etc/group) is honoured.
		Features: &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: true},
	}
	if req.GetVerbose() {
		info := map[string]any{"config": s.opts.Config}
		if progErr == nil {
			info["programs"] = programs
		}
		if netErr == nil {
			info["network"] = network
		}
		info["apparmor"] = map[string]any{"enabled": false}
		if s.opts.AppArmor != nil {
			info["apparmor"] = s.opts.AppArmor.Status()
		}
		if s.opts.Checkpoint != nil {
			// Whether CheckpointContainer and restores work, and if not why.
			info["checkpoint"] = s.opts.Checkpoint.Status(ctx)
		}
		if cidr := s.opts.Network.PodCIDR(); cidr != "" {
			info["podCIDR"] = cidr
		}
		resp.Info = make(map[string]string, len(info))
		for k, v := range info {
			b, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("encode status info %s: %w", k, err)
			}
			resp.Info[k] = string(b)
		}
	}
	return resp, nil
}

// condition turns a readiness error into a CRI condition: a NotReadyError's
// reason is kept, anything else is reported under a generic reason.
func condition(typ string, err error) *runtimeapi.RuntimeCondition {
	if err == nil {
		return &runtimeapi.RuntimeCondition{Type: typ, Status: true}
	}
	reason := typ[:len(typ)-len("Ready")] + "NotReady"
	var nr *errdefs.NotReadyError
	if errors.As(err, &nr) {
		reason = nr.Reason
	}
	return &runtimeapi.RuntimeCondition{Type: typ, Status: false, Reason: reason, Message: err.Error()}
}

// runtimeHandlers lists the default handler ("") and each named one, with
// the features its OCI runtime and this kernel support.
func (s *runtimeService) runtimeHandlers() []*runtimeapi.RuntimeHandler {
	out := make([]*runtimeapi.RuntimeHandler, 0, len(s.opts.Handlers)+1)
	for _, h := range append([]string{""}, s.opts.Handlers...) {
		f := s.opts.HandlerFeatures[h]
		out = append(out, &runtimeapi.RuntimeHandler{Name: h, Features: &runtimeapi.RuntimeHandlerFeatures{
			RecursiveReadOnlyMounts: f.RecursiveReadOnlyMounts,
			UserNamespaces:          f.UserNamespaces,
		}})
	}
	return out
}

func (s *runtimeService) RuntimeConfig(context.Context, *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	driver := runtimeapi.CgroupDriver_CGROUPFS
	if s.opts.CgroupDriver == systemdCgroupDriver {
		driver = runtimeapi.CgroupDriver_SYSTEMD
	}
	return &runtimeapi.RuntimeConfigResponse{Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: driver}}, nil
}

// UpdateRuntimeConfig takes the node's pod CIDR, which the kubelet sends
// when it learns or changes it: the built-in network then gives new pods
// addresses from it (see pkg/sandbox/cni, Manager.SetPodCIDR).
func (s *runtimeService) UpdateRuntimeConfig(_ context.Context, req *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	if err := s.opts.Network.SetPodCIDR(req.GetRuntimeConfig().GetNetworkConfig().GetPodCidr()); err != nil {
		return nil, err
	}
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}
