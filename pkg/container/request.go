package container

import (
	"fmt"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/oci/spec"
)

// The types of a CreateRequest: plain data in the container's own terms, so
// that callers (the CRI adapter, a pod restore) describe a container without
// knowing how its OCI spec is built. Create turns them into a spec.Input.

// NamespaceMode says where a container's PID namespace comes from.
type NamespaceMode int

const (
	// NamespacePod joins the pod's PID namespace (the pod must share one).
	NamespacePod NamespaceMode = iota
	// NamespaceContainer is a PID namespace of the container's own.
	NamespaceContainer
	// NamespaceNode is the host's PID namespace.
	NamespaceNode
	// NamespaceTarget joins the PID namespace of another running container
	// of the pod, CreateRequest.TargetID.
	NamespaceTarget
)

// Propagation is a bind mount's propagation mode.
type Propagation int

const (
	// PropagationPrivate: no propagation either way.
	PropagationPrivate Propagation = iota
	// PropagationHostToContainer: host mounts appear in the container (rslave).
	PropagationHostToContainer
	// PropagationBidirectional: mounts propagate both ways (rshared).
	PropagationBidirectional
)

// Device is a host device node exposed in the container.
type Device struct {
	ContainerPath, HostPath string
	// Permissions is a subset of "rwm"; "" means "rwm".
	Permissions string
}

// Resources are a container's cgroup limits; zero values mean unset.
type Resources struct {
	CPUPeriod, CPUQuota, CPUShares, MemoryLimit, MemorySwapLimit int64
	CpusetCpus, CpusetMems                                       string
	OOMScoreAdj                                                  int
	Hugepages                                                    []Hugepage
	// Unified holds cgroup v2 keys ("memory.high": "…").
	Unified map[string]string
}

// Hugepage is a hugetlb limit for one page size ("2MB", "1GB").
type Hugepage struct {
	PageSize string
	Limit    uint64
}

// ProfileType selects a seccomp or AppArmor profile.
type ProfileType int

const (
	// ProfileRuntimeDefault is the runtime's default profile.
	ProfileRuntimeDefault ProfileType = iota
	// ProfileUnconfined is no profile.
	ProfileUnconfined
	// ProfileLocalhost is a profile on the node, Profile.LocalhostRef.
	ProfileLocalhost
)

// Profile is a seccomp or AppArmor profile choice. For seccomp LocalhostRef
// is the absolute path of a profile file; for AppArmor the name of a loaded
// profile.
type Profile struct {
	Type         ProfileType
	LocalhostRef string
}

// Security is a container's security context.
type Security struct {
	Privileged, ReadonlyRootfs, NoNewPrivs bool
	// RunAsUser wins over RunAsUsername, which wins over the image's USER.
	RunAsUser, RunAsGroup *int64
	RunAsUsername         string
	SupplementalGroups    []int64
	// SupplementalGroupsStrict uses only SupplementalGroups and the primary
	// group; otherwise the user's groups in the image's /etc/group are added.
	SupplementalGroupsStrict bool
	// CapAdd and CapDrop name capabilities ("NET_ADMIN", "CAP_NET_ADMIN",
	// "ALL").
	CapAdd, CapDrop []string
	// MaskedPaths and ReadonlyPaths are used as given unless the matching
	// Default* flag asks for the usual defaults instead.
	MaskedPaths, ReadonlyPaths               []string
	DefaultMaskedPaths, DefaultReadonlyPaths bool
	Seccomp, AppArmor                        Profile
}

// checkRequest refuses what no pod or image could make valid, before any
// work: so a bad request fails the same way whatever the pod's state.
func checkRequest(req CreateRequest) error {
	for _, v := range req.ImageVolumes {
		if err := validateImageSubPath(v.SubPath); err != nil {
			return fmt.Errorf("mount %q: %w", v.ContainerPath, err)
		}
	}
	switch req.PIDMode {
	case NamespacePod, NamespaceContainer, NamespaceNode, NamespaceTarget:
	default:
		return fmt.Errorf("pid namespace mode %d: %w", req.PIDMode, errdefs.ErrInvalidArgument)
	}
	return nil
}

// requestInput is the request's part of the container's spec.Input; the
// image's, the pod's and the host's are added by specInput.
func requestInput(req CreateRequest) spec.Input {
	in := spec.Input{
		Command: req.Command, Args: req.Args, Env: req.Env, WorkingDir: req.WorkingDir,
		TTY: req.TTY, Stdin: req.Stdin, StdinOnce: req.StdinOnce,
		Annotations: req.Annotations,
		Security:    specSecurity(req.Security),
		Resources:   req.Resources.Spec(),
	}
	for _, m := range req.Mounts {
		in.Mounts = append(in.Mounts, spec.Mount{ContainerPath: m.ContainerPath, HostPath: m.HostPath,
			Readonly: m.Readonly, RecursiveReadOnly: m.RecursiveReadOnly, Propagation: specPropagation(m.Propagation)})
	}
	for _, d := range req.Devices {
		in.Devices = append(in.Devices, spec.Device{ContainerPath: d.ContainerPath, HostPath: d.HostPath, Permissions: d.Permissions})
	}
	return in
}

// Spec is r as the spec builder takes it.
func (r Resources) Spec() spec.Resources {
	out := spec.Resources{
		CPUPeriod: r.CPUPeriod, CPUQuota: r.CPUQuota, CPUShares: r.CPUShares,
		MemoryLimit: r.MemoryLimit, MemorySwapLimit: r.MemorySwapLimit,
		CpusetCpus: r.CpusetCpus, CpusetMems: r.CpusetMems, OOMScoreAdj: r.OOMScoreAdj,
		Unified: r.Unified,
	}
	for _, h := range r.Hugepages {
		out.Hugepages = append(out.Hugepages, spec.Hugepage{PageSize: h.PageSize, Limit: h.Limit})
	}
	return out
}

func specSecurity(s Security) spec.Security {
	return spec.Security{
		Privileged: s.Privileged, ReadonlyRootfs: s.ReadonlyRootfs, NoNewPrivs: s.NoNewPrivs,
		RunAsUser: s.RunAsUser, RunAsGroup: s.RunAsGroup, RunAsUsername: s.RunAsUsername,
		SupplementalGroups: s.SupplementalGroups, SupplementalGroupsStrict: s.SupplementalGroupsStrict,
		CapAdd: s.CapAdd, CapDrop: s.CapDrop,
		MaskedPaths: s.MaskedPaths, ReadonlyPaths: s.ReadonlyPaths,
		DefaultMaskedPaths: s.DefaultMaskedPaths, DefaultReadonlyPaths: s.DefaultReadonlyPaths,
		Seccomp: specProfile(s.Seccomp), AppArmor: specProfile(s.AppArmor),
	}
}

func specProfile(p Profile) spec.Profile {
	out := spec.Profile{LocalhostPath: p.LocalhostRef}
	switch p.Type {
	case ProfileUnconfined:
		out.Type = spec.Unconfined
	case ProfileLocalhost:
		out.Type = spec.Localhost
	default:
		out.Type = spec.RuntimeDefault
	}
	return out
}

func specPropagation(p Propagation) spec.Propagation {
	switch p {
	case PropagationHostToContainer:
		return spec.RSlave
	case PropagationBidirectional:
		return spec.RShared
	}
	return spec.Private
}

// specPIDMode is m as the spec builder names it.
func specPIDMode(m NamespaceMode) spec.NamespaceMode {
	switch m {
	case NamespacePod:
		return spec.Pod
	case NamespaceNode:
		return spec.Node
	case NamespaceTarget:
		return spec.Target
	}
	return spec.Container
}
