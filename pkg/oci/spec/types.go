// Package spec builds the OCI runtime spec (config.json) of a container from
// plain inputs: the CRI request, the image config and the pod's files.
//
// Building is pure: Build never runs a process and never talks to the OCI
// runtime. The only files it reads are /etc/passwd and /etc/group inside the
// container's rootfs (resolved without leaving it), Localhost seccomp profiles,
// and a stat of each mount source and device node the request names. The
// node's facts (its AppArmor, device nodes, capability bounding set and
// cgroup controllers) come in the Input: the package holds no host state.
//
// Build is made of small steps, one per file: process.go (argv, env, cwd),
// identity.go (uid, gids), namespaces.go, mounts.go, devices.go, security.go
// (capabilities, masked paths, seccomp, AppArmor) and resources.go.
package spec

import specs "github.com/opencontainers/runtime-spec/specs-go"

// NamespaceMode says where a container's namespace comes from.
type NamespaceMode int

const (
	// Pod: join the pod's namespace at Namespace.Path.
	Pod NamespaceMode = iota
	// Container: a new namespace private to this container (PID only).
	Container
	// Node: the host's namespace; the spec carries no entry for it.
	Node
	// Target: join another container's namespace at Namespace.Path (PID only).
	Target
)

// String names the mode for error messages.
func (m NamespaceMode) String() string {
	switch m {
	case Pod:
		return "pod"
	case Container:
		return "container"
	case Node:
		return "node"
	case Target:
		return "target"
	}
	return "unknown"
}

// Namespace is one namespace of the container: its mode and, for Pod and
// Target, the path of the namespace to join (e.g. a pinned bind mount or
// /proc/<pid>/ns/pid).
type Namespace struct {
	Mode NamespaceMode
	Path string
}

// UserNamespace is a user namespace to join, at Path, and its mappings.
type UserNamespace struct {
	Path       string
	UIDs, GIDs []specs.LinuxIDMapping
}

// Input is everything Build needs; it carries no behaviour.
type Input struct {
	// ID is the container ID. It is not written into the spec; it only
	// names the container in error messages.
	ID       string
	Hostname string
	// Rootfs is the absolute path of the container's mounted root filesystem.
	Rootfs string
	// Image is the image's config.
	Image ImageConfig
	// Command and Args are the CRI request's, with Kubernetes semantics:
	// Command replaces the image Entrypoint, Args replaces the image Cmd.
	Command, Args []string
	// Env is the request's environment, "K=V" each.
	Env        []string
	WorkingDir string
	// TTY gives the process a terminal. Stdin and StdinOnce do not change
	// the spec (the monitor wires stdin); they are here so callers can pass
	// one Input around.
	TTY, Stdin, StdinOnce bool
	// Network, IPC and UTS are Pod or Node; PID is Container, Pod, Node or
	// Target.
	Network, IPC, UTS, PID Namespace
	// UserNS, when set, is the pod's user namespace the container joins;
	// the request's bind mounts are then idmapped with its mappings.
	UserNS  *UserNamespace
	Mounts  []Mount
	Devices []Device
	// HostsPath, HostnamePath and ResolvConfPath are the pod's files,
	// bind-mounted at /etc/hosts, /etc/hostname and /etc/resolv.conf when
	// set. ShmPath is the pod's /dev/shm; "" means host IPC, and the host's
	// /dev/shm is bound instead.
	HostsPath, HostnamePath, ResolvConfPath, ShmPath string
	Security                                         Security
	// Host is the node's device nodes and capability bounding set.
	Host Host
	// AppArmor is the node's AppArmor; nil on nodes without it.
	AppArmor  AppArmorHost
	Resources Resources
	// CgroupsPath is passed through to linux.cgroupsPath.
	CgroupsPath string
	// Controllers are the cgroup controllers the OCI runtime can use on
	// this host (cgroup.Controllers). Limits for one that is absent are
	// left out of the spec: runc would fail the create. nil means all.
	Controllers Controllers
	Sysctls     map[string]string
	Annotations map[string]string
	// OOMScoreAdjMin is the lowest oom_score_adj the daemon may give (its
	// own): requests below it are raised to it.
	OOMScoreAdjMin int
}

// ImageConfig is the part of an image's config a container spec uses.
type ImageConfig struct {
	Entrypoint, Cmd, Env []string
	WorkingDir           string
	// User is the image's USER: "uid", "name", "uid:gid" or "name:group".
	User       string
	StopSignal string
}

// Propagation is a mount's propagation mode.
type Propagation int

const (
	// Private: no propagation in either direction ("rprivate").
	Private Propagation = iota
	// RSlave: host mounts propagate into the container ("rslave").
	RSlave
	// RShared: mounts propagate both ways ("rshared").
	RShared
)

// Mount is a bind mount the request asks for.
type Mount struct {
	ContainerPath, HostPath string
	Readonly                bool
	// RecursiveReadOnly makes sub-mounts read-only too; it needs Readonly and
	// Private propagation.
	RecursiveReadOnly bool
	Propagation       Propagation
	// Options are extra mount options, appended verbatim after the ones
	// Build derives (e.g. "nosuid", "noexec").
	Options []string
}

// Device is a host device node to expose in the container.
type Device struct {
	ContainerPath, HostPath string
	// Permissions is a subset of "rwm"; "" means "rwm".
	Permissions string
}

// Security is the container's security context.
type Security struct {
	Privileged, ReadonlyRootfs, NoNewPrivs bool
	// RunAsUser wins over RunAsUsername, which wins over the image USER.
	RunAsUser, RunAsGroup *int64
	RunAsUsername         string
	SupplementalGroups    []int64
	// SupplementalGroupsStrict false (Merge) adds the groups the user is a
	// member of in the rootfs /etc/group; true (Strict) uses only
	// SupplementalGroups and the primary gid.
	SupplementalGroupsStrict bool
	// CapAdd and CapDrop take "NET_ADMIN" or "CAP_NET_ADMIN" in any case,
	// and "ALL".
	CapAdd, CapDrop []string
	// MaskedPaths and ReadonlyPaths are used as given unless the matching
	// Default* flag is true, which selects the usual defaults instead.
	MaskedPaths, ReadonlyPaths               []string
	DefaultMaskedPaths, DefaultReadonlyPaths bool
	Seccomp                                  Profile
	AppArmor                                 Profile
}

// AppArmorHost is what the builder needs to know of the node's AppArmor.
type AppArmorHost interface {
	// Loaded reports whether the kernel has the named profile loaded.
	Loaded(name string) bool
}

// ProfileType selects a seccomp or AppArmor profile.
type ProfileType int

const (
	// RuntimeDefault: the runtime's default profile.
	RuntimeDefault ProfileType = iota
	// Unconfined: no profile.
	Unconfined
	// Localhost: a profile on the node, named by Profile.LocalhostPath.
	Localhost
)

// Profile is a seccomp or AppArmor profile choice. For seccomp,
// LocalhostPath is the absolute path of a JSON specs.LinuxSeccomp file; for
// AppArmor it is the name of a loaded profile.
type Profile struct {
	Type          ProfileType
	LocalhostPath string
}

// Resources are the container's cgroup limits; zero values mean unset.
type Resources struct {
	CPUPeriod, CPUQuota, CPUShares, MemoryLimit, MemorySwapLimit, PidsLimit int64
	CpusetCpus, CpusetMems                                                  string
	OOMScoreAdj                                                             int
	Hugepages                                                               []Hugepage
	// Unified holds cgroup v2 keys ("memory.high": "…").
	Unified map[string]string
}

// Controllers is a set of cgroup controller names ("cpu", "hugetlb").
// A nil set holds every controller.
type Controllers map[string]bool

// Has reports whether the controller is in the set.
func (c Controllers) Has(name string) bool { return c == nil || c[name] }

// Hugepage is a hugetlb limit for one page size ("2MB", "1GB").
type Hugepage struct {
	PageSize string
	Limit    uint64
}
