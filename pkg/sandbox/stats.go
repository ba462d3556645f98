package sandbox

import (
	"fmt"
	"sync"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Stats are a pod's resource usage: its cgroup's CPU and memory and its
// network interfaces' counters.
type Stats struct {
	Timestamp time.Time
	CPU       *CPUStats
	Memory    *MemoryStats
	Network   []InterfaceStats // the pod's interfaces, the CNI one first
}

// CPUStats: cumulative usage, and the rate since the previous sample.
type CPUStats struct {
	UsageCoreNanoSeconds uint64
	UsageNanoCores       *uint64 // nil for a first sample
}

// MemoryStats in bytes (faults are counts).
type MemoryStats struct {
	WorkingSetBytes, UsageBytes, RSSBytes, PageFaults, MajorPageFaults uint64
	AvailableBytes                                                     *uint64
}

// InterfaceStats are one network interface's counters.
type InterfaceStats struct {
	Name                                 string
	RxBytes, RxErrors, TxBytes, TxErrors uint64
}

// cpuSamples remembers the last CPU sample of each cgroup, to turn the
// cumulative counter into a rate.
type cpuSamples struct {
	mu   sync.Mutex
	last map[string]cpuSample
}

type cpuSample struct {
	at    time.Time
	usage uint64
}

// rate records a sample and returns nanocores since the previous one.
func (c *cpuSamples) rate(key string, at time.Time, usage uint64) *uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		c.last = map[string]cpuSample{}
	}
	prev, ok := c.last[key]
	c.last[key] = cpuSample{at, usage}
	if !ok || !at.After(prev.at) || usage < prev.usage {
		return nil
	}
	r := uint64(float64(usage-prev.usage) / at.Sub(prev.at).Seconds())
	return &r
}

func (c *cpuSamples) forget(key string) {
	c.mu.Lock()
	delete(c.last, key)
	c.mu.Unlock()
}

// cgroupStats reads CPU and memory usage of the cgroup at path.
func cgroupStats(samples *cpuSamples, path string) (*CPUStats, *MemoryStats, time.Time, error) {
	m, err := cgroupManager(path)
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	st, err := m.GetStats()
	now := time.Now()
	if err != nil {
		return nil, nil, now, fmt.Errorf("read cgroup %s: %w", path, err)
	}
	cpu := &CPUStats{UsageCoreNanoSeconds: st.CpuStats.CpuUsage.TotalUsage}
	cpu.UsageNanoCores = samples.rate(path, now, cpu.UsageCoreNanoSeconds)
	return cpu, memoryStats(st), now, nil
}

// memoryStats derives the kubelet's working set (usage less inactive file
// cache) from cgroup v1 or v2 counters.
func memoryStats(st *cgroups.Stats) *MemoryStats {
	ms := st.MemoryStats
	get := func(v1, v2 string) uint64 {
		if v, ok := ms.Stats[v1]; ok {
			return v
		}
		return ms.Stats[v2]
	}
	out := &MemoryStats{
		UsageBytes:      ms.Usage.Usage,
		RSSBytes:        get("total_rss", "anon"),
		PageFaults:      get("total_pgfault", "pgfault"),
		MajorPageFaults: get("total_pgmajfault", "pgmajfault"),
	}
	inactive := get("total_inactive_file", "inactive_file")
	if out.UsageBytes > inactive {
		out.WorkingSetBytes = out.UsageBytes - inactive
	}
	if limit := ms.Usage.Limit; limit > 0 && limit < 1<<62 && limit > out.WorkingSetBytes {
		avail := limit - out.WorkingSetBytes
		out.AvailableBytes = &avail
	}
	return out
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
		s := InterfaceStats{Name: a.Name, RxBytes: a.Statistics.RxBytes, RxErrors: a.Statistics.RxErrors, TxBytes: a.Statistics.TxBytes, TxErrors: a.Statistics.TxErrors}
		if a.Name == "eth0" {
			out = append([]InterfaceStats{s}, out...)
		} else {
			out = append(out, s)
		}
	}
	return out, nil
}

// Stats reads the pod's usage. A pod that is not ready has no network.
func (m *Manager) Stats(id string) (*Stats, error) {
	sb, err := m.Get(id)
	if err != nil {
		return nil, err
	}
	cpu, mem, at, err := cgroupStats(&m.samples, sb.CgroupParent)
	if err != nil {
		return nil, err
	}
	st := &Stats{Timestamp: at, CPU: cpu, Memory: mem}
	if p := sb.NetNSPath(); p != "" && sb.State == Ready {
		if st.Network, err = interfaceStats(p); err != nil {
			return nil, err
		}
	}
	return st, nil
}
