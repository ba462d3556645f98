package cri

import (
	"context"
	"fmt"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/container"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// CreateContainer creates a container in a pod; the image must be pulled.
func (s *runtimeService) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	creq, err := createRequest(req)
	if err != nil {
		return nil, err
	}
	c, err := s.opts.Containers.Create(ctx, creq)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.CreateContainerResponse{ContainerId: c.ID}, nil
}

// createRequest converts the CRI request.
func createRequest(req *runtimeapi.CreateContainerRequest) (container.CreateRequest, error) {
	cfg := req.GetConfig()
	lx := cfg.GetLinux()
	sc := lx.GetSecurityContext()
	out := container.CreateRequest{
		PodID: req.GetPodSandboxId(), Name: cfg.GetMetadata().GetName(), Attempt: cfg.GetMetadata().GetAttempt(),
		Image: cfg.GetImage().GetImage(), Labels: cfg.GetLabels(), Annotations: cfg.GetAnnotations(),
		LogPath: cfg.GetLogPath(), Stdin: cfg.GetStdin(), StdinOnce: cfg.GetStdinOnce(),
		StopSignal: stopSignalName(cfg.GetStopSignal()),
		TargetID:   sc.GetNamespaceOptions().GetTargetId(),
	}
	out.PIDFromPod = sc.GetNamespaceOptions() == nil
	switch sc.GetNamespaceOptions().GetPid() {
	case runtimeapi.NamespaceMode_POD:
		out.PIDMode = container.NamespacePod
	case runtimeapi.NamespaceMode_NODE:
		out.PIDMode = container.NamespaceNode
	case runtimeapi.NamespaceMode_TARGET:
		out.PIDMode = container.NamespaceTarget
	case runtimeapi.NamespaceMode_CONTAINER:
		out.PIDMode = container.NamespaceContainer
	default:
		return out, fmt.Errorf("namespace_options.pid %v is not a namespace mode: %w", sc.GetNamespaceOptions().GetPid(), errdefs.ErrInvalidArgument)
	}
	out.Command, out.Args, out.WorkingDir, out.TTY = cfg.GetCommand(), cfg.GetArgs(), cfg.GetWorkingDir(), cfg.GetTty()
	for _, kv := range cfg.GetEnvs() {
		out.Env = append(out.Env, kv.GetKey()+"="+string(kv.GetValue()))
	}
	for _, m := range cfg.GetMounts() {
		if img := m.GetImage().GetImage(); img != "" {
			// An image volume (KEP-4639): read-only by definition, so a
			// writable one cannot be expressed to the container service.
			if !m.GetReadonly() {
				return out, fmt.Errorf("mount %q: image volumes must be read-only: %w", m.GetContainerPath(), errdefs.ErrInvalidArgument)
			}
			out.ImageVolumes = append(out.ImageVolumes, container.ImageVolume{ContainerPath: m.GetContainerPath(), Image: img, SubPath: m.GetImageSubPath()})
			continue
		}
		p, err := propagation(m.GetPropagation())
		if err != nil {
			return out, err
		}
		out.Mounts = append(out.Mounts, container.Mount{ContainerPath: m.GetContainerPath(), HostPath: m.GetHostPath(),
			Readonly: m.GetReadonly(), RecursiveReadOnly: m.GetRecursiveReadOnly(), Propagation: p})
	}
	for _, d := range cfg.GetDevices() {
		out.Devices = append(out.Devices, container.Device{ContainerPath: d.GetContainerPath(), HostPath: d.GetHostPath(), Permissions: d.GetPermissions()})
	}
	sec := container.Security{
		Privileged: sc.GetPrivileged(), ReadonlyRootfs: sc.GetReadonlyRootfs(), NoNewPrivs: sc.GetNoNewPrivs(),
		RunAsUsername: sc.GetRunAsUsername(), SupplementalGroups: sc.GetSupplementalGroups(),
		SupplementalGroupsStrict: sc.GetSupplementalGroupsPolicy() == runtimeapi.SupplementalGroupsPolicy_Strict,
		CapAdd:                   sc.GetCapabilities().GetAddCapabilities(), CapDrop: sc.GetCapabilities().GetDropCapabilities(),
		MaskedPaths: sc.GetMaskedPaths(), ReadonlyPaths: sc.GetReadonlyPaths(),
		DefaultMaskedPaths: len(sc.GetMaskedPaths()) == 0, DefaultReadonlyPaths: len(sc.GetReadonlyPaths()) == 0,
	}
	if u := sc.GetRunAsUser(); u != nil {
		v := u.GetValue()
		sec.RunAsUser = &v
	}
	if g := sc.GetRunAsGroup(); g != nil {
		v := g.GetValue()
		sec.RunAsGroup = &v
	}
	var err error
	if sec.Seccomp, err = profile("seccomp", sc.GetSeccomp(), sc.GetSeccompProfilePath(), container.ProfileUnconfined); err != nil {
		return out, err
	}
	if sec.AppArmor, err = profile("apparmor", sc.GetApparmor(), sc.GetApparmorProfile(), container.ProfileRuntimeDefault); err != nil {
		return out, err
	}
	out.Security = sec
	out.Resources = containerResources(lx.GetResources())
	return out, nil
}

// containerResources converts the CRI's resources (nil means none).
func containerResources(r *runtimeapi.LinuxContainerResources) container.Resources {
	out := container.Resources{
		CPUPeriod: r.GetCpuPeriod(), CPUQuota: r.GetCpuQuota(), CPUShares: r.GetCpuShares(),
		MemoryLimit: r.GetMemoryLimitInBytes(), MemorySwapLimit: r.GetMemorySwapLimitInBytes(),
		CpusetCpus: r.GetCpusetCpus(), CpusetMems: r.GetCpusetMems(), OOMScoreAdj: int(r.GetOomScoreAdj()),
		Unified: r.GetUnified(),
	}
	for _, h := range r.GetHugepageLimits() {
		out.Hugepages = append(out.Hugepages, container.Hugepage{PageSize: h.GetPageSize(), Limit: h.GetLimit()})
	}
	return out
}

func propagation(p runtimeapi.MountPropagation) (container.Propagation, error) {
	switch p {
	case runtimeapi.MountPropagation_PROPAGATION_PRIVATE:
		return container.PropagationPrivate, nil
	case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
		return container.PropagationHostToContainer, nil
	case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
		return container.PropagationBidirectional, nil
	}
	return 0, fmt.Errorf("mount propagation %v: %w", p, errdefs.ErrInvalidArgument)
}

// criPropagation is the inverse of propagation, for ContainerStatus.
func criPropagation(p container.Propagation) runtimeapi.MountPropagation {
	switch p {
	case container.PropagationHostToContainer:
		return runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER
	case container.PropagationBidirectional:
		return runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL
	}
	return runtimeapi.MountPropagation_PROPAGATION_PRIVATE
}

// profile converts a seccomp or AppArmor choice: the structured field, else
// the deprecated string ("runtime/default", "unconfined", "localhost/<x>"),
// else unset, the CRI default for its kind: unconfined for seccomp, the
// runtime's default profile for AppArmor (api.proto: "runtime/default:
// equivalent to not specifying a profile").
func profile(kind string, p *runtimeapi.SecurityProfile, legacy string, unset container.ProfileType) (container.Profile, error) {
	if p != nil {
		switch p.GetProfileType() {
		case runtimeapi.SecurityProfile_RuntimeDefault:
			return container.Profile{Type: container.ProfileRuntimeDefault}, nil
		case runtimeapi.SecurityProfile_Unconfined:
			return container.Profile{Type: container.ProfileUnconfined}, nil
		case runtimeapi.SecurityProfile_Localhost:
			ref := p.GetLocalhostRef()
			if kind == "apparmor" {
				// api.proto asks for the bare profile name; clients
				// (critest among them) also send the deprecated field's
				// "localhost/<name>" form, which containerd and CRI-O accept.
				ref = strings.TrimPrefix(ref, "localhost/")
			}
			return container.Profile{Type: container.ProfileLocalhost, LocalhostRef: ref}, nil
		}
		return container.Profile{}, fmt.Errorf("%s profile type %v: %w", kind, p.GetProfileType(), errdefs.ErrInvalidArgument)
	}
	switch {
	case legacy == "":
		return container.Profile{Type: unset}, nil
	case legacy == "unconfined":
		return container.Profile{Type: container.ProfileUnconfined}, nil
	case legacy == "runtime/default" || legacy == "docker/default":
		return container.Profile{Type: container.ProfileRuntimeDefault}, nil
	case strings.HasPrefix(legacy, "localhost/"):
		return container.Profile{Type: container.ProfileLocalhost, LocalhostRef: strings.TrimPrefix(legacy, "localhost/")}, nil
	}
	return container.Profile{}, fmt.Errorf("%s profile %q: %w", kind, legacy, errdefs.ErrInvalidArgument)
}

// stopSignalName turns the CRI enum (SIGNAL_SIGTERM…) into a signal name;
// SIGNAL_RUNTIME_DEFAULT is "".
func stopSignalName(s runtimeapi.Signal) string {
	if s == runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT {
		return ""
	}
	return strings.TrimPrefix(s.String(), "SIGNAL_")
}
