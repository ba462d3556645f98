package sandbox

import (
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/cri-runtime/cri-runtime/pkg/cgroup"
)

// Stats are a pod's resource usage: its cgroup's CPU and memory and its
// network interfaces' counters.
type Stats struct {
	Timestamp time.Time
	CPU       *cgroup.CPUStats
	Memory    *cgroup.MemoryStats
	Cgroup    *cgroup.Sample   // the whole reading CPU and Memory come from
	Network   []InterfaceStats // the pod's interfaces, the CNI one first
}

// InterfaceStats are one network interface's counters.
type InterfaceStats struct {
	Name                                 string
	RxBytes, RxErrors, TxBytes, TxErrors uint64
	RxPackets, RxDropped                 uint64
	TxPackets, TxDropped                 uint64
}

// interfaceStats reads the counters of every interface but loopback in the
// network namespace pinned at nsPath, through netlink.
func interfaceStats(nsPath string) ([]InterfaceStats, error) {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", nsPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", nsPath, err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links in %s: %w", nsPath, err)
	}
	var out []InterfaceStats
	for _, l := range links {
		a := l.Attrs()
		if a.Name == "lo" || a.Statistics == nil {
			continue
		}
		n := a.Statistics
		s := InterfaceStats{
			Name:    a.Name,
			RxBytes: n.RxBytes, RxErrors: n.RxErrors, RxPackets: n.RxPackets, RxDropped: n.RxDropped,
			TxBytes: n.TxBytes, TxErrors: n.TxErrors, TxPackets: n.TxPackets, TxDropped: n.TxDropped,
		}
		if a.Name == "eth0" {
			out = append([]InterfaceStats{s}, out...)
		} else {
			out = append(out, s)
		}
	}
	return out, nil
}

// Stats reads the pod's usage, its cgroup as much as detail says. A pod
// that is not ready has no network.
func (m *Manager) Stats(id string, detail cgroup.Detail) (*Stats, error) {
	sb, err := m.Get(id)
	if err != nil {
		return nil, err
	}
	cg, err := cgroup.Read(&m.samples, sb.CgroupParent, detail)
	if err != nil {
		return nil, err
	}
	st := &Stats{Timestamp: cg.Timestamp, CPU: cg.CPU, Memory: cg.Memory, Cgroup: cg}
	if p := sb.NetNSPath(); p != "" && sb.State == Ready {
		if st.Network, err = interfaceStats(p); err != nil {
			return nil, err
		}
	}
	return st, nil
}
