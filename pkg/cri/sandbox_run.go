package cri

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/sandbox"
)

// RunPodSandbox creates the pod's namespaces, files and network.
func (s *runtimeService) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	cfg, err := s.podConfig(req.GetConfig(), req.GetRuntimeHandler())
	if err != nil {
		return nil, err
	}
	sb, err := s.opts.Sandboxes.Run(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: sb.ID}, nil
}

// podConfig converts a pod's configuration to run on handler, which must
// be configured and support what the pod asks for.
func (s *runtimeService) podConfig(c *runtimeapi.PodSandboxConfig, handler string) (sandbox.Config, error) {
	if handler != "" && !slices.Contains(s.opts.Handlers, handler) {
		return sandbox.Config{}, fmt.Errorf("runtime handler %q is not configured (have %s): %w", handler, strings.Join(s.opts.Handlers, ", "), errdefs.ErrInvalidArgument)
	}
	cfg, err := sandboxConfig(c)
	if err != nil {
		return cfg, err
	}
	cfg.RuntimeHandler = handler
	if cfg.UserNS != nil && !s.opts.HandlerFeatures[cfg.RuntimeHandler].UserNamespaces {
		return cfg, fmt.Errorf("runtime handler %q cannot run pods in a user namespace of their own on this host (it needs an OCI runtime with idmapped mounts, such as runc >= 1.2, and a kernel that idmaps the daemon's root): %w", cfg.RuntimeHandler, errdefs.ErrFailedPrecondition)
	}
	return cfg, nil
}

// maxHostname is the kernel's limit (HOST_NAME_MAX); sethostname refuses more.
const maxHostname = 64

// sandboxConfig converts the CRI pod configuration.
func sandboxConfig(c *runtimeapi.PodSandboxConfig) (sandbox.Config, error) {
	md := c.GetMetadata()
	ns := c.GetLinux().GetSecurityContext().GetNamespaceOptions()
	if d := c.GetLogDirectory(); d != "" && !filepath.IsAbs(d) {
		return sandbox.Config{}, fmt.Errorf("log_directory %q must be an absolute path on the host: %w", d, errdefs.ErrInvalidArgument)
	}
	if h := c.GetHostname(); len(h) > maxHostname {
		return sandbox.Config{}, fmt.Errorf("hostname %q is longer than %d bytes: %w", h, maxHostname, errdefs.ErrInvalidArgument)
	}
	cfg := sandbox.Config{
		Metadata:     sandbox.Metadata{Name: md.GetName(), Namespace: md.GetNamespace(), UID: md.GetUid(), Attempt: md.GetAttempt()},
		Hostname:     c.GetHostname(),
		LogDirectory: c.GetLogDirectory(),
		Labels:       c.GetLabels(),
		Annotations:  c.GetAnnotations(),
		CgroupParent: c.GetLinux().GetCgroupParent(),
		Sysctls:      c.GetLinux().GetSysctls(),
		HostNetwork:  ns.GetNetwork() == runtimeapi.NamespaceMode_NODE,
		HostIPC:      ns.GetIpc() == runtimeapi.NamespaceMode_NODE,
		Overhead:     resources(c.GetLinux().GetOverhead()),
		Resources:    resources(c.GetLinux().GetResources()),
	}
	switch ns.GetPid() {
	case runtimeapi.NamespaceMode_NODE:
		cfg.PIDMode = sandbox.PIDHost
	case runtimeapi.NamespaceMode_POD:
		cfg.PIDMode = sandbox.PIDPod
	case runtimeapi.NamespaceMode_CONTAINER:
	default:
		return cfg, fmt.Errorf("namespace_options.pid %v is not valid for a pod: %w", ns.GetPid(), errdefs.ErrInvalidArgument)
	}
	// No options is the node's user namespace (POD is the enum's zero value).
	switch u := ns.GetUsernsOptions(); {
	case u == nil, u.GetMode() == runtimeapi.NamespaceMode_NODE:
	case u.GetMode() == runtimeapi.NamespaceMode_POD:
		cfg.UserNS = &sandbox.UserNS{UIDs: idMaps(u.GetUids()), GIDs: idMaps(u.GetGids())}
		if err := cfg.UserNS.Validate(); err != nil {
			return cfg, err
		}
	default:
		return cfg, fmt.Errorf("namespace_options.userns_options.mode %v: a pod's user namespace is the node's (NODE) or its own (POD): %w", u.GetMode(), errdefs.ErrInvalidArgument)
	}
	if ns.GetNetwork() != runtimeapi.NamespaceMode_POD && ns.GetNetwork() != runtimeapi.NamespaceMode_NODE ||
		ns.GetIpc() != runtimeapi.NamespaceMode_POD && ns.GetIpc() != runtimeapi.NamespaceMode_NODE {
		return cfg, fmt.Errorf("namespace_options: network and ipc must be POD or NODE for a pod: %w", errdefs.ErrInvalidArgument)
	}
	if d := c.GetDnsConfig(); d != nil {
		cfg.DNS = &sandbox.DNSConfig{Servers: d.GetServers(), Searches: d.GetSearches(), Options: d.GetOptions()}
	}
	for _, pm := range c.GetPortMappings() {
		proto := strings.ToLower(pm.GetProtocol().String())
		if _, known := runtimeapi.Protocol_name[int32(pm.GetProtocol())]; !known {
			return cfg, fmt.Errorf("port mapping protocol %d: %w", pm.GetProtocol(), errdefs.ErrInvalidArgument)
		}
		if pm.GetHostPort() == 0 {
			continue // nothing to map: the port is only exposed inside the pod
		}
		cfg.PortMappings = append(cfg.PortMappings, sandbox.PortMapping{
			HostPort: pm.GetHostPort(), ContainerPort: pm.GetContainerPort(), Protocol: proto, HostIP: pm.GetHostIp(),
		})
	}
	return cfg, nil
}

func idMaps(in []*runtimeapi.IDMapping) []sandbox.IDMap {
	out := make([]sandbox.IDMap, 0, len(in))
	for _, m := range in {
		out = append(out, sandbox.IDMap{ContainerID: m.GetContainerId(), HostID: m.GetHostId(), Size: m.GetLength()})
	}
	return out
}

func resources(r *runtimeapi.LinuxContainerResources) *sandbox.Resources {
	if r == nil {
		return nil
	}
	return &sandbox.Resources{
		CPUPeriod: r.GetCpuPeriod(), CPUQuota: r.GetCpuQuota(), CPUShares: r.GetCpuShares(),
		MemoryLimitInBytes: r.GetMemoryLimitInBytes(), CpusetCpus: r.GetCpusetCpus(), CpusetMems: r.GetCpusetMems(),
	}
}

// UpdatePodSandboxResources records the pod-level resources the kubelet has
// already applied to the pod's cgroup (api.proto: called after the kubelet
// reconfigures it; best effort).
func (s *runtimeService) UpdatePodSandboxResources(_ context.Context, req *runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	if err := s.opts.Sandboxes.UpdateResources(req.GetPodSandboxId(), resources(req.GetOverhead()), resources(req.GetResources())); err != nil {
		return nil, err
	}
	return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
}
