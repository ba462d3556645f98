package cri

import (
	"context"
	"errors"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/container"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/sandbox"
)

// ListMetricDescriptors describes the metrics ListPodSandboxMetrics reports.
func (s *runtimeService) ListMetricDescriptors(context.Context, *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	return &runtimeapi.ListMetricDescriptorsResponse{Descriptors: metricDescriptors}, nil
}

// ListPodSandboxMetrics reports, for every ready pod, its cgroup's usage and
// its network, and for its running containers their cgroup's usage, their
// writable layer and its filesystem, their resources and start time: the
// metrics metricDescriptors describes.
func (s *runtimeService) ListPodSandboxMetrics(context.Context, *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	m, err := s.podMetrics()
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxMetricsResponse{PodMetrics: m}, nil
}

// StreamPodSandboxMetrics is ListPodSandboxMetrics in batches, ended by EOF.
func (s *runtimeService) StreamPodSandboxMetrics(_ *runtimeapi.StreamPodSandboxMetricsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxMetricsResponse]) error {
	m, err := s.podMetrics()
	if err != nil {
		return err
	}
	return inBatches(m, func(b []*runtimeapi.PodSandboxMetrics) error {
		return stream.Send(&runtimeapi.StreamPodSandboxMetricsResponse{PodSandboxMetrics: b})
	})
}

func (s *runtimeService) podMetrics() ([]*runtimeapi.PodSandboxMetrics, error) {
	var out []*runtimeapi.PodSandboxMetrics
	for _, sb := range s.opts.Sandboxes.List(sandbox.Filter{State: sandbox.Ready}) {
		st, err := s.opts.Sandboxes.Stats(sb.ID, container.StatsMetrics)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		pm := &runtimeapi.PodSandboxMetrics{PodSandboxId: sb.ID, Metrics: podLevelMetrics(sb, st)}
		for _, c := range s.opts.Containers.List(container.Filter{PodID: sb.ID, State: container.Running}) {
			cst, err := s.opts.Containers.Stats(c.ID, container.StatsMetrics)
			if err != nil {
				continue // removed meanwhile
			}
			pm.ContainerMetrics = append(pm.ContainerMetrics, &runtimeapi.ContainerMetrics{ContainerId: c.ID, Metrics: containerLevelMetrics(sb, c, cst)})
		}
		out = append(out, pm)
	}
	return out, nil
}

// metricSet gathers metrics that share a timestamp and base label values.
type metricSet struct {
	ts   int64
	base []string
	out  []*runtimeapi.Metric
}

func newMetricSet(at time.Time, id, image string, sb *sandbox.Sandbox, ctr string) *metricSet {
	return &metricSet{ts: at.UnixNano(), base: []string{id, image, sb.Config.Metadata.Namespace, sb.Config.Metadata.Name, ctr}}
}

// add records d's value; labels are the values of d's own label keys.
func (ms *metricSet) add(d *metricDesc, v uint64, labels ...string) {
	lv := make([]string, 0, len(ms.base)+len(labels))
	lv = append(append(lv, ms.base...), labels...)
	ms.out = append(ms.out, &runtimeapi.Metric{Name: d.name, Timestamp: ms.ts, MetricType: d.typ, LabelValues: lv, Value: &runtimeapi.UInt64Value{Value: v}})
}

// podLevelMetrics: the pod cgroup's usage, labelled like cAdvisor's pod
// cgroup (no image, no container name), and the network, which cAdvisor
// reports on the pod's infra container "POD".
func podLevelMetrics(sb *sandbox.Sandbox, st *sandbox.Stats) []*runtimeapi.Metric {
	ms := newMetricSet(st.Timestamp, sb.ID, "", sb, "")
	if st.Cgroup != nil {
		ms.addCgroup(st.Cgroup)
	}
	out := ms.out
	net := newMetricSet(st.Timestamp, sb.ID, "", sb, "POD")
	for _, n := range st.Network {
		net.add(mNetReceiveBytes, n.RxBytes, n.Name)
		net.add(mNetReceivePackets, n.RxPackets, n.Name)
		net.add(mNetReceiveDropped, n.RxDropped, n.Name)
		net.add(mNetReceiveErrors, n.RxErrors, n.Name)
		net.add(mNetTransmitBytes, n.TxBytes, n.Name)
		net.add(mNetTransmitPackets, n.TxPackets, n.Name)
		net.add(mNetTransmitDropped, n.TxDropped, n.Name)
		net.add(mNetTransmitErrors, n.TxErrors, n.Name)
	}
	return append(out, net.out...)
}

// containerLevelMetrics: the container's cgroup usage while it runs, its
// writable layer, the resources it was given and when it started.
func containerLevelMetrics(sb *sandbox.Sandbox, c *container.Container, st *container.Stats) []*runtimeapi.Metric {
	ms := newMetricSet(st.Timestamp, c.ID, c.Image, sb, c.Name)
	if st.Cgroup != nil {
		ms.addCgroup(st.Cgroup)
	}
	if w := st.WritableLayer; w != nil {
		ms.add(mFsUsage, w.UsedBytes)
	}
	if f := st.Filesystem; f != nil {
		ms.add(mFsLimit, f.CapacityBytes)
		ms.add(mFsInodesTotal, f.InodesTotal)
		ms.add(mFsInodesFree, f.InodesFree)
	}
	ms.addSpec(c.Spec)
	if !c.StartedAt.IsZero() {
		ms.add(mStartTime, uint64(max(c.StartedAt.Unix(), 0)))
	}
	ms.add(mLastSeen, uint64(max(st.Timestamp.Unix(), 0)))
	return ms.out
}

// addSpec reports the resources runc was given as cAdvisor does: a CPU
// period and quota only when there is a quota, limits as 0 when unlimited.
func (ms *metricSet) addSpec(spec *specs.Spec) {
	var r *specs.LinuxResources
	if spec != nil && spec.Linux != nil {
		r = spec.Linux.Resources
	}
	var cpu *specs.LinuxCPU
	mem := &specs.LinuxMemory{}
	if r != nil {
		cpu = r.CPU
		if r.Memory != nil {
			mem = r.Memory
		}
	}
	if cpu != nil {
		if cpu.Quota != nil && *cpu.Quota > 0 {
			if cpu.Period != nil {
				ms.add(mSpecCPUPeriod, *cpu.Period)
			}
			ms.add(mSpecCPUQuota, uint64(*cpu.Quota))
		}
		if cpu.Shares != nil {
			ms.add(mSpecCPUShares, *cpu.Shares)
		}
	}
	limit := func(v *int64) uint64 {
		if v == nil || *v <= 0 {
			return 0
		}
		return uint64(*v)
	}
	ms.add(mSpecMemoryLimit, limit(mem.Limit))
	ms.add(mSpecMemoryReservation, limit(mem.Reservation))
	ms.add(mSpecMemorySwapLimit, limit(mem.Swap))
}

// addCgroup reports a cgroup reading, the same for a pod as a container.
func (ms *metricSet) addCgroup(s *container.Sample) {
	const sec = uint64(time.Second)
	if c := s.CPU; c != nil {
		ms.add(mCPUUsageSeconds, c.UsageCoreNanoSeconds/sec, "total")
		ms.add(mCPUUserSeconds, c.UserNanoSeconds/sec)
		ms.add(mCPUSystemSeconds, c.SystemNanoSeconds/sec)
		ms.add(mCPUCfsPeriods, c.Periods)
		ms.add(mCPUCfsThrottledPeriods, c.ThrottledPeriods)
		ms.add(mCPUCfsThrottledSeconds, c.ThrottledNanoSeconds/sec)
	}
	if m := s.Memory; m != nil {
		ms.add(mMemoryUsage, m.UsageBytes)
		ms.add(mMemoryWorkingSet, m.WorkingSetBytes)
		ms.add(mMemoryRSS, m.RSSBytes)
		ms.add(mMemoryCache, m.CacheBytes)
		ms.add(mMemoryMappedFile, m.MappedFileBytes)
		ms.add(mMemorySwap, m.SwapBytes)
		ms.add(mMemoryKernel, m.KernelBytes)
		ms.add(mMemoryMaxUsage, m.MaxUsageBytes)
		ms.add(mMemoryFailcnt, m.Failcnt)
		ms.add(mMemoryFailures, m.OwnPageFaults, "pgfault", "container")
		ms.add(mMemoryFailures, m.OwnMajorPageFaults, "pgmajfault", "container")
		ms.add(mMemoryFailures, m.PageFaults, "pgfault", "hierarchy")
		ms.add(mMemoryFailures, m.MajorPageFaults, "pgmajfault", "hierarchy")
		ms.add(mOomEvents, m.OOMKills)
	}
	if t := s.Tasks; t != nil {
		ms.add(mProcesses, t.Processes)
		ms.add(mThreads, t.Threads)
		ms.add(mThreadsMax, t.ThreadsMax)
		ms.add(mFileDescriptors, t.FileDescriptors)
		ms.add(mSockets, t.Sockets)
	}
	for _, d := range s.IO {
		major, minor := strconv.FormatUint(d.Major, 10), strconv.FormatUint(d.Minor, 10)
		ms.add(mFsReadsBytes, d.ReadBytes, d.Device)
		ms.add(mFsReads, d.Reads, d.Device)
		ms.add(mFsWritesBytes, d.WriteBytes, d.Device)
		ms.add(mFsWrites, d.Writes, d.Device)
		ms.add(mBlkioDeviceUsage, d.ReadBytes, d.Device, major, minor, "Read")
		ms.add(mBlkioDeviceUsage, d.WriteBytes, d.Device, major, minor, "Write")
	}
	for _, h := range s.Hugetlb {
		ms.add(mHugetlbUsage, h.UsageBytes, h.PageSize)
		ms.add(mHugetlbMaxUsage, h.MaxUsageBytes, h.PageSize)
	}
	if p := s.Pressure; p != nil {
		const us = uint64(time.Second / time.Microsecond)
		ms.add(mPressureCPUStalled, p.CPU.FullMicroseconds/us)
		ms.add(mPressureCPUWaiting, p.CPU.SomeMicroseconds/us)
		ms.add(mPressureMemoryStalled, p.Memory.FullMicroseconds/us)
		ms.add(mPressureMemoryWaiting, p.Memory.SomeMicroseconds/us)
		ms.add(mPressureIOStalled, p.IO.FullMicroseconds/us)
		ms.add(mPressureIOWaiting, p.IO.SomeMicroseconds/us)
	}
}
