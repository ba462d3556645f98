// Package sandbox runs pod sandboxes: the network, IPC and UTS namespaces a
// pod's containers share, pinned by bind mounts instead of held open by a
// pause container, plus the pod's cgroup parent, its hostname, hosts,
// resolv.conf and /dev/shm, and its CNI network attachment.
package sandbox

import (
	"fmt"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/sandbox/cni"
)

// State is a sandbox's lifecycle state.
type State string

const (
	// Ready: namespaces pinned and networking attached; containers may run.
	Ready State = "ready"
	// NotReady: stopped (networking torn down) or not recovered after a
	// reboot; the pod can only be removed.
	NotReady State = "notready"
	// creating is only ever seen in a record: RunPodSandbox was cut short
	// and start-up must undo what it did.
	creating State = "creating"
)

// Metadata identifies a pod as the kubelet knows it. Two sandboxes with
// the same metadata cannot exist at once.
type Metadata struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	UID       string `json:"uid"`
	Attempt   uint32 `json:"attempt"`
}

func (m Metadata) key() string {
	return fmt.Sprintf("%s\x00%s\x00%s\x00%d", m.Namespace, m.Name, m.UID, m.Attempt)
}

// DNSConfig is the pod's resolver configuration.
type DNSConfig struct {
	Servers  []string `json:"servers,omitempty"`
	Searches []string `json:"searches,omitempty"`
	Options  []string `json:"options,omitempty"`
}

// Resources is the pod-level resource configuration the kubelet reports
// through UpdatePodSandboxResources (the kubelet itself applies it to the
// pod's cgroup).
type Resources struct {
	CPUPeriod          int64  `json:"cpuPeriod,omitempty"`
	CPUQuota           int64  `json:"cpuQuota,omitempty"`
	CPUShares          int64  `json:"cpuShares,omitempty"`
	MemoryLimitInBytes int64  `json:"memoryLimitInBytes,omitempty"`
	CpusetCpus         string `json:"cpusetCpus,omitempty"`
	CpusetMems         string `json:"cpusetMems,omitempty"`
}

// PIDMode says whose PID namespace the pod's containers use.
type PIDMode string

const (
	// PIDContainer: each container has its own (the kubelet's default).
	PIDContainer PIDMode = ""
	// PIDPod: the containers share one, kept alive by a tiny init process.
	PIDPod PIDMode = "pod"
	// PIDHost: the host's.
	PIDHost PIDMode = "host"
)

// Config is what a pod asks for.
type Config struct {
	Metadata       Metadata          `json:"metadata"`
	Hostname       string            `json:"hostname,omitempty"`
	LogDirectory   string            `json:"logDirectory,omitempty"`
	DNS            *DNSConfig        `json:"dns,omitempty"`
	PortMappings   []cni.PortMapping `json:"portMappings,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	Annotations    map[string]string `json:"annotations,omitempty"`
	CgroupParent   string            `json:"cgroupParent,omitempty"`
	Sysctls        map[string]string `json:"sysctls,omitempty"`
	HostNetwork    bool              `json:"hostNetwork,omitempty"`
	HostIPC        bool              `json:"hostIPC,omitempty"`
	PIDMode        PIDMode           `json:"pidMode,omitempty"`
	RuntimeHandler string            `json:"runtimeHandler,omitempty"`
	Overhead       *Resources        `json:"overhead,omitempty"`
	Resources      *Resources        `json:"resources,omitempty"`
	// UserNS, when set, gives the pod a user namespace of its own.
	UserNS *UserNS `json:"userNS,omitempty"`
}

// Sandbox is a pod sandbox as persisted under --root. Values handed out by
// the Manager are copies: reading them needs no lock.
type Sandbox struct {
	ID        string    `json:"id"`
	Config    Config    `json:"config"`
	State     State     `json:"state"`
	CreatedAt time.Time `json:"createdAt"`

	// Dir is the pod's volatile directory (namespace pins, files, shm).
	Dir string `json:"dir"`
	// Namespaces maps a namespace kind ("net", "ipc", "uts") the pod owns
	// to its pin; kinds shared with the host are absent.
	Namespaces map[string]string `json:"namespaces"`
	// Network is what CNI ADD did, for DEL; nil for host-network pods.
	// Detached says CNI DEL has run (the pod is stopped; its addresses stay
	// reported). A NotReady pod that is not Detached had its stop cut short:
	// DEL is still owed.
	Network  *cni.Attachment `json:"network,omitempty"`
	Detached bool            `json:"detached,omitempty"`
	// Removing is set before a RemovePodSandbox takes anything away; a
	// start-up finds such a pod half-removed and finishes the job.
	Removing bool `json:"removing,omitempty"`
	// CgroupParent is the resolved cgroup path of the pod (cgroupfs form).
	// CgroupCreated is the topmost directory we created for it, which we
	// remove with the pod ("" when the cgroup was already there).
	CgroupParent  string `json:"cgroupParent"`
	CgroupCreated string `json:"cgroupCreated,omitempty"`

	// PausePID and PauseStart identify the init of a pod that shares one
	// PID namespace among its containers (see startPause).
	PausePID   int    `json:"pausePID,omitempty"`
	PauseStart uint64 `json:"pauseStart,omitempty"`
}

// IPs are the pod's addresses, IPv4 first.
func (s *Sandbox) IPs() []string {
	if s.Network == nil {
		return nil
	}
	return s.Network.IPs
}

// PIDNSPath is the pod's shared PID namespace, "" unless PIDMode is PIDPod.
func (s *Sandbox) PIDNSPath() string { return s.Namespaces[pidNS.name] }

// UserNSPath is the pod's user namespace, "" unless Config.UserNS is set.
func (s *Sandbox) UserNSPath() string { return s.Namespaces[userNS.name] }

// NetNSPath is the pod's network namespace, "" for host-network pods.
func (s *Sandbox) NetNSPath() string { return s.Namespaces[netNS.name] }

// HostsPath, HostnamePath, ResolvConfPath and ShmPath are the files and
// mount the pod's containers bind-mount; ShmPath is "" for host-IPC pods.
func (s *Sandbox) HostsPath() string      { return s.Dir + "/" + hostsFile }
func (s *Sandbox) HostnamePath() string   { return s.Dir + "/" + hostnameFile }
func (s *Sandbox) ResolvConfPath() string { return s.Dir + "/" + resolvFile }
func (s *Sandbox) ShmPath() string {
	if s.Config.HostIPC {
		return ""
	}
	return s.Dir + "/" + shmDir
}

// clone returns a copy safe to hand out.
func (s *Sandbox) clone() *Sandbox {
	c := *s
	c.Namespaces = make(map[string]string, len(s.Namespaces))
	for k, v := range s.Namespaces {
		c.Namespaces[k] = v
	}
	if s.Network != nil {
		n := *s.Network
		n.IPs = append([]string(nil), s.Network.IPs...)
		c.Network = &n
	}
	return &c
}
