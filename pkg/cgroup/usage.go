package cgroup

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fscommon"
)

// Sample is one reading of a cgroup: what ContainerStats and the CRI
// metrics report about a container or a pod.
type Sample struct {
	Timestamp time.Time
	CPU       *CPUStats
	Memory    *MemoryStats
	Tasks     *TaskStats     // nil when the cgroup's processes could not be listed
	IO        []DeviceIO     // devices the cgroup did I/O on, when blkio/io accounts for them
	Hugetlb   []HugetlbStats // one per page size, when the hugetlb controller is on
	Pressure  *Pressure      // nil without PSI (cgroup v1, or a kernel without it)
}

// CPUStats: cumulative usage, and the rate since the previous sample. All
// times are in nanoseconds.
type CPUStats struct {
	UsageCoreNanoSeconds uint64
	UsageNanoCores       *uint64 // nil for a first sample
	UserNanoSeconds      uint64
	SystemNanoSeconds    uint64
	// CFS bandwidth control: enforcement periods elapsed, those in which
	// the cgroup was throttled, and the time it spent throttled.
	Periods, ThrottledPeriods, ThrottledNanoSeconds uint64
}

// MemoryStats in bytes (faults and events are counts).
type MemoryStats struct {
	WorkingSetBytes, UsageBytes, RSSBytes uint64
	AvailableBytes                        *uint64 // nil without a limit
	MaxUsageBytes                         uint64  // the peak; 0 where the kernel does not keep it
	CacheBytes, MappedFileBytes           uint64
	SwapBytes                             uint64 // swap alone; 0 without swap accounting
	KernelBytes                           uint64
	// Failcnt counts the times usage hit the limit (v1 memory.failcnt,
	// v2 the "max" event).
	Failcnt uint64
	// PageFaults and MajorPageFaults include the descendant cgroups';
	// Own* count the cgroup's own tasks (the same on v2, whose memory.stat
	// is always hierarchical).
	PageFaults, MajorPageFaults       uint64
	OwnPageFaults, OwnMajorPageFaults uint64
	OOMKills                          uint64 // processes the OOM killer killed in the cgroup
}

// TaskStats count the processes of a cgroup (its descendants' included)
// and what they hold open.
type TaskStats struct {
	Processes, Threads uint64
	ThreadsMax         uint64 // the pids limit, 0 for none
	FileDescriptors    uint64
	Sockets            uint64
}

// DeviceIO is a cgroup's I/O on one block device.
type DeviceIO struct {
	Major, Minor       uint64
	Device             string // "/dev/sda"; "major:minor" when the device has no node name
	ReadBytes, Reads   uint64
	WriteBytes, Writes uint64
}

// HugetlbStats is the hugepage usage of one page size ("2MB").
type HugetlbStats struct {
	PageSize                  string
	UsageBytes, MaxUsageBytes uint64
}

// Pressure is the cgroup's pressure stall information: how long some of
// its tasks waited, and how long all of them stalled, per resource.
type Pressure struct {
	CPU, Memory, IO PSI
}

// PSI totals in microseconds.
type PSI struct {
	SomeMicroseconds, FullMicroseconds uint64
}

// Stats reads the cgroup at path, every controller the metrics report;
// samples turns the CPU counter into a rate. Usage reads less.
func Stats(samples *Sampler, path string) (*Sample, error) {
	m, err := manage(path)
	if err != nil {
		return nil, err
	}
	st, err := m.GetStats()
	now := time.Now()
	if err != nil {
		return nil, fmt.Errorf("read cgroup %s: %w", path, err)
	}
	s := &Sample{Timestamp: now, CPU: cpuStats(st), Memory: memoryStats(st)}
	s.CPU.UsageNanoCores = samples.rate(path, now, s.CPU.UsageCoreNanoSeconds)
	memoryEvents(m, s.Memory)
	if pids, err := allPids(m); err == nil {
		s.Tasks = taskStats("/proc", pids)
		if l := st.PidsStats.Limit; l < 1<<62 {
			s.Tasks.ThreadsMax = l
		}
	}
	s.IO = deviceIO(st.BlkioStats)
	s.Hugetlb = hugetlbStats(st.HugetlbStats)
	if st.CpuStats.PSI != nil && st.MemoryStats.PSI != nil && st.BlkioStats.PSI != nil {
		s.Pressure = &Pressure{CPU: psi(st.CpuStats.PSI), Memory: psi(st.MemoryStats.PSI), IO: psi(st.BlkioStats.PSI)}
	}
	return s, nil
}

// Detail says how much of a cgroup a reading takes.
type Detail int

const (
	// DetailUsage is CPU and memory, what the CRI's stats report (Usage).
	DetailUsage Detail = iota
	// DetailAll adds the processes, I/O, hugepages and pressure the CRI
	// metrics report (Stats).
	DetailAll
)

// Read is Usage or Stats, as d says.
func Read(samples *Sampler, path string, d Detail) (*Sample, error) {
	if d == DetailAll {
		return Stats(samples, path)
	}
	return Usage(samples, path)
}

// Usage reads what the CRI's stats report of the cgroup at path, its CPU
// and memory, from the few files that hold them (cpuacct.usage, memory.stat,
// usage and limit on v1; cpu.stat, memory.stat, current and max on v2), where
// Stats reads every controller's files for the metrics. The kubelet asks for
// every container's and pod's usage at each relist: a node of 100 pods read
// thirty files per cgroup, twice a second, for numbers nobody looked at.
func Usage(samples *Sampler, path string) (*Sample, error) {
	st := cgroups.Stats{MemoryStats: cgroups.MemoryStats{Stats: map[string]uint64{}}}
	var err error
	if cgroups.IsCgroup2UnifiedMode() {
		err = readUsageV2(filepath.Join(unifiedRoot, path), &st)
	} else {
		err = readUsageV1(path, &st)
	}
	now := time.Now()
	if err != nil {
		return nil, fmt.Errorf("read cgroup %s: %w", path, err)
	}
	s := &Sample{Timestamp: now, CPU: cpuStats(&st), Memory: memoryStats(&st)}
	s.CPU.UsageNanoCores = samples.rate(path, now, s.CPU.UsageCoreNanoSeconds)
	return s, nil
}

const unifiedRoot = "/sys/fs/cgroup"

// v1Mountpoint is where a v1 controller's hierarchy is mounted, found once:
// the library looks it up (a walk of mountinfo or a stat) on every call.
var v1Mountpoint = func() func(subsystem string) (string, error) {
	var mu sync.Mutex
	found := map[string]string{}
	return func(subsystem string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if m, ok := found[subsystem]; ok {
			return m, nil
		}
		m, err := cgroups.FindCgroupMountpoint("", subsystem)
		if err != nil {
			return "", err
		}
		found[subsystem] = m
		return m, nil
	}
}()

func readUsageV1(path string, st *cgroups.Stats) error {
	cpu, err := v1Mountpoint("cpuacct")
	if err != nil {
		return err
	}
	mem, err := v1Mountpoint("memory")
	if err != nil {
		return err
	}
	cpuDir, memDir := filepath.Join(cpu, path), filepath.Join(mem, path)
	if st.CpuStats.CpuUsage.TotalUsage, err = readUint(cpuDir, "cpuacct.usage"); err != nil {
		return err
	}
	if err := readKeyed(memDir, "memory.stat", st.MemoryStats.Stats); err != nil {
		return err
	}
	if st.MemoryStats.Usage.Usage, err = readUint(memDir, "memory.usage_in_bytes"); err != nil {
		return err
	}
	st.MemoryStats.Usage.Limit, err = readUint(memDir, "memory.limit_in_bytes")
	return err
}

func readUsageV2(dir string, st *cgroups.Stats) error {
	cpu := map[string]uint64{}
	if err := readKeyed(dir, "cpu.stat", cpu); err != nil {
		return err
	}
	st.CpuStats.CpuUsage.TotalUsage = cpu["usage_usec"] * 1000
	st.CpuStats.CpuUsage.UsageInUsermode = cpu["user_usec"] * 1000
	st.CpuStats.CpuUsage.UsageInKernelmode = cpu["system_usec"] * 1000
	if err := readKeyed(dir, "memory.stat", st.MemoryStats.Stats); err != nil {
		return err
	}
	var err error
	if st.MemoryStats.Usage.Usage, err = readUint(dir, "memory.current"); err != nil {
		return err
	}
	// "max" reads as the largest number: no limit.
	st.MemoryStats.Usage.Limit, err = readUint(dir, "memory.max")
	return err
}

// readKeyed parses a cgroup "key value" file into out; a missing file is
// an error (the cgroup is gone). The paths are our own records', so plain
// opens do (the library's guard against a path leaving cgroupfs costs an
// openat2 and a statfs per file).
func readKeyed(dir, file string, out map[string]uint64) error {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, err := fscommon.ParseKeyValue(sc.Text())
		if err != nil {
			return fmt.Errorf("%s/%s: %w", dir, file, err)
		}
		out[k] = v
	}
	return sc.Err()
}

// readUint reads a one-number cgroup file; "max" is the largest number.
func readUint(dir, file string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0, err
	}
	v := strings.TrimSpace(string(b))
	if v == "max" {
		return math.MaxUint64, nil
	}
	n, err := fscommon.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s/%s: %w", dir, file, err)
	}
	return n, nil
}

// allPids lists the processes of the cgroup and its descendants. On v1 the
// library looks in the devices hierarchy, where a pod's cgroup, made
// without device rules, may be missing: the pids or memory one has it.
func allPids(m cgroups.Manager) ([]int, error) {
	if cgroups.IsCgroup2UnifiedMode() {
		return cgroups.GetAllPids(m.Path(""))
	}
	for _, c := range []string{"pids", "memory"} {
		if p := m.Path(c); p != "" {
			if _, err := os.Stat(p); err == nil {
				return cgroups.GetAllPids(p)
			}
		}
	}
	return nil, fmt.Errorf("no pids or memory hierarchy for cgroup %s", m.Path(""))
}

func cpuStats(st *cgroups.Stats) *CPUStats {
	u, t := st.CpuStats.CpuUsage, st.CpuStats.ThrottlingData
	return &CPUStats{
		UsageCoreNanoSeconds: u.TotalUsage,
		UserNanoSeconds:      u.UsageInUsermode,
		SystemNanoSeconds:    u.UsageInKernelmode,
		Periods:              t.Periods,
		ThrottledPeriods:     t.ThrottledPeriods,
		ThrottledNanoSeconds: t.ThrottledTime,
	}
}

// memoryStats derives the kubelet's working set (usage less inactive file
// cache) and the rest from cgroup v1 or v2 counters.
func memoryStats(st *cgroups.Stats) *MemoryStats {
	ms := st.MemoryStats
	has := func(k string) bool { _, ok := ms.Stats[k]; return ok }
	get := func(v1, v2 string) uint64 {
		if v, ok := ms.Stats[v1]; ok {
			return v
		}
		return ms.Stats[v2]
	}
	out := &MemoryStats{
		UsageBytes:         ms.Usage.Usage,
		MaxUsageBytes:      ms.Usage.MaxUsage,
		Failcnt:            ms.Usage.Failcnt,
		RSSBytes:           get("total_rss", "anon"),
		CacheBytes:         get("total_cache", "file"),
		MappedFileBytes:    get("total_mapped_file", "file_mapped"),
		PageFaults:         get("total_pgfault", "pgfault"),
		MajorPageFaults:    get("total_pgmajfault", "pgmajfault"),
		OwnPageFaults:      ms.Stats["pgfault"],
		OwnMajorPageFaults: ms.Stats["pgmajfault"],
	}
	if has("total_rss") { // v1: memsw counts memory and swap together
		if ms.SwapUsage.Usage > ms.Usage.Usage {
			out.SwapBytes = ms.SwapUsage.Usage - ms.Usage.Usage
		}
		out.KernelBytes = ms.KernelUsage.Usage
	} else {
		out.SwapBytes = ms.SwapOnlyUsage.Usage
		if k, ok := ms.Stats["kernel"]; ok { // Linux 6.1+
			out.KernelBytes = k
		} else {
			out.KernelBytes = ms.Stats["kernel_stack"] + ms.Stats["pagetables"] + ms.Stats["percpu"] + ms.Stats["sock"] + ms.Stats["slab"]
		}
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

// memoryEvents adds the OOM kills (and on v2 the limit hits) the library
// does not read: v1 memory.oom_control, v2 memory.events.
func memoryEvents(m cgroups.Manager, out *MemoryStats) {
	if cgroups.IsCgroup2UnifiedMode() {
		ev := flatKeyed(filepath.Join(m.Path(""), "memory.events"))
		out.OOMKills, out.Failcnt = ev["oom_kill"], ev["max"]
		return
	}
	out.OOMKills = flatKeyed(filepath.Join(m.Path("memory"), "memory.oom_control"))["oom_kill"]
}

// flatKeyed parses a cgroup "key value" file; a missing file is empty, a
// line that does not parse ends it.
func flatKeyed(path string) map[string]uint64 {
	out := map[string]uint64{}
	_ = readKeyed(filepath.Dir(path), filepath.Base(path), out)
	return out
}

// taskStats counts the threads, file descriptors and sockets of pids
// through procfs (rooted at proc, for tests). A process that exits
// meanwhile counts as a process and nothing more.
func taskStats(proc string, pids []int) *TaskStats {
	out := &TaskStats{Processes: uint64(len(pids))}
	for _, pid := range pids {
		dir := filepath.Join(proc, strconv.Itoa(pid))
		if tasks, err := os.ReadDir(filepath.Join(dir, "task")); err == nil {
			out.Threads += uint64(len(tasks))
		}
		fds, err := os.ReadDir(filepath.Join(dir, "fd"))
		if err != nil {
			continue
		}
		out.FileDescriptors += uint64(len(fds))
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(dir, "fd", fd.Name())); err == nil && strings.HasPrefix(l, "socket:") {
				out.Sockets++
			}
		}
	}
	return out
}

// deviceIO folds the library's per-device, per-operation entries (v1
// blkio, v2 io.stat) into one record per device, reads and writes only.
func deviceIO(b cgroups.BlkioStats) []DeviceIO {
	var out []DeviceIO
	at := func(e cgroups.BlkioStatEntry) *DeviceIO {
		for i := range out {
			if out[i].Major == e.Major && out[i].Minor == e.Minor {
				return &out[i]
			}
		}
		out = append(out, DeviceIO{Major: e.Major, Minor: e.Minor})
		return &out[len(out)-1]
	}
	for _, e := range b.IoServiceBytesRecursive {
		switch e.Op {
		case "Read":
			at(e).ReadBytes += e.Value
		case "Write":
			at(e).WriteBytes += e.Value
		}
	}
	for _, e := range b.IoServicedRecursive {
		switch e.Op {
		case "Read":
			at(e).Reads += e.Value
		case "Write":
			at(e).Writes += e.Value
		}
	}
	for i := range out {
		out[i].Device = deviceName("/sys", out[i].Major, out[i].Minor)
	}
	return out
}

// deviceName is the /dev node of a block device, from its uevent in sysfs
// (rooted at sys, for tests).
func deviceName(sys string, major, minor uint64) string {
	b, err := os.ReadFile(filepath.Join(sys, "dev", "block", fmt.Sprintf("%d:%d", major, minor), "uevent"))
	if err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if name, ok := strings.CutPrefix(l, "DEVNAME="); ok && name != "" {
				return "/dev/" + name
			}
		}
	}
	return fmt.Sprintf("%d:%d", major, minor)
}

func hugetlbStats(h map[string]cgroups.HugetlbStats) []HugetlbStats {
	var out []HugetlbStats
	for size, s := range h {
		out = append(out, HugetlbStats{PageSize: size, UsageBytes: s.Usage, MaxUsageBytes: s.MaxUsage})
	}
	slices.SortFunc(out, func(a, b HugetlbStats) int { return strings.Compare(a.PageSize, b.PageSize) })
	return out
}

func psi(p *cgroups.PSIStats) PSI {
	return PSI{SomeMicroseconds: p.Some.Total, FullMicroseconds: p.Full.Total}
}
