package cri

import (
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/cgroup"
	"github.com/cri-runtime/cri-runtime/pkg/container"
	"github.com/cri-runtime/cri-runtime/pkg/image"
	"github.com/cri-runtime/cri-runtime/pkg/sandbox"
)

// critestMetrics are the metrics critest v1.37's "runtime should support
// returning metrics descriptors" expects (the cAdvisor set the kubelet
// exposes), less container_ulimits_soft, which we do not report.
var critestMetrics = []string{
	"container_blkio_device_usage_total", "container_cpu_cfs_periods_total", "container_cpu_cfs_throttled_periods_total",
	"container_cpu_cfs_throttled_seconds_total", "container_cpu_system_seconds_total", "container_cpu_usage_seconds_total",
	"container_cpu_user_seconds_total", "container_file_descriptors", "container_fs_inodes_free", "container_fs_inodes_total",
	"container_fs_limit_bytes", "container_fs_reads_bytes_total", "container_fs_reads_total", "container_fs_usage_bytes",
	"container_fs_writes_bytes_total", "container_fs_writes_total", "container_hugetlb_max_usage_bytes",
	"container_hugetlb_usage_bytes", "container_last_seen", "container_memory_cache", "container_memory_failcnt",
	"container_memory_failures_total", "container_memory_kernel_usage", "container_memory_mapped_file",
	"container_memory_max_usage_bytes", "container_memory_rss", "container_memory_swap", "container_memory_usage_bytes",
	"container_memory_working_set_bytes", "container_network_receive_bytes_total", "container_network_receive_errors_total",
	"container_network_receive_packets_dropped_total", "container_network_receive_packets_total",
	"container_network_transmit_bytes_total", "container_network_transmit_errors_total",
	"container_network_transmit_packets_dropped_total", "container_network_transmit_packets_total",
	"container_oom_events_total", "container_pressure_cpu_stalled_seconds_total", "container_pressure_cpu_waiting_seconds_total",
	"container_pressure_io_stalled_seconds_total", "container_pressure_io_waiting_seconds_total",
	"container_pressure_memory_stalled_seconds_total", "container_pressure_memory_waiting_seconds_total",
	"container_processes", "container_sockets", "container_spec_cpu_period", "container_spec_cpu_quota",
	"container_spec_cpu_shares", "container_spec_memory_limit_bytes", "container_spec_memory_reservation_limit_bytes",
	"container_spec_memory_swap_limit_bytes", "container_start_time_seconds", "container_threads", "container_threads_max",
}

func TestMetricDescriptors(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range metricDescriptors {
		if seen[d.Name] {
			t.Errorf("%s described twice", d.Name)
		}
		seen[d.Name] = true
		if d.Help == "" || len(d.LabelKeys) < len(baseLabelKeys) || !slices.Equal(d.LabelKeys[:len(baseLabelKeys)], baseLabelKeys) {
			t.Errorf("%s: help %q, label keys %v; want help and the base keys first", d.Name, d.Help, d.LabelKeys)
		}
	}
	for _, n := range critestMetrics {
		if !seen[n] {
			t.Errorf("%s is not described", n)
		}
	}
	if len(seen) != len(critestMetrics) {
		t.Errorf("%d metrics described; want the %d critest knows", len(seen), len(critestMetrics))
	}
}

func ptr[T any](v T) *T { return &v }

var (
	started = time.Unix(1_700_000_000, 0)
	now     = started.Add(time.Minute)
	testPod = &sandbox.Sandbox{ID: "pod1", Config: sandbox.Config{Metadata: sandbox.Metadata{Name: "web", Namespace: "default"}}}
	// the container critest's metrics test runs
	critestCtr = &container.Container{
		ID: "ctr1", Name: "app", Image: "busybox:1.36", State: container.Running, StartedAt: started,
		Spec: &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{
			CPU:    &specs.LinuxCPU{Period: ptr[uint64](100000), Quota: ptr[int64](20000), Shares: ptr[uint64](1024)},
			Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20), Swap: ptr[int64](64 << 20)},
		}}},
	}
	fullSample = &cgroup.Sample{
		Timestamp: now,
		CPU: &cgroup.CPUStats{
			UsageCoreNanoSeconds: 2_500_000_000, UserNanoSeconds: 1_900_000_000, SystemNanoSeconds: 600_000_000,
			Periods: 40, ThrottledPeriods: 7, ThrottledNanoSeconds: 3_200_000_000,
		},
		Memory: &cgroup.MemoryStats{
			UsageBytes: 10 << 20, WorkingSetBytes: 8 << 20, RSSBytes: 6 << 20, CacheBytes: 4 << 20, MappedFileBytes: 1 << 20,
			SwapBytes: 4096, KernelBytes: 8192, MaxUsageBytes: 12 << 20, Failcnt: 2,
			PageFaults: 100, MajorPageFaults: 3, OwnPageFaults: 90, OwnMajorPageFaults: 2, OOMKills: 1,
		},
		Tasks:    &cgroup.TaskStats{Processes: 2, Threads: 5, ThreadsMax: 1024, FileDescriptors: 9, Sockets: 1},
		IO:       []cgroup.DeviceIO{{Major: 8, Minor: 0, Device: "/dev/sda", ReadBytes: 4096, Reads: 1, WriteBytes: 8192, Writes: 2}},
		Hugetlb:  []cgroup.HugetlbStats{{PageSize: "2MB", UsageBytes: 2 << 20, MaxUsageBytes: 4 << 20}},
		Pressure: &cgroup.Pressure{CPU: cgroup.PSI{SomeMicroseconds: 3_000_000, FullMicroseconds: 1_000_000}},
	}
	fullCtrStats = &container.Stats{
		Timestamp: now, Cgroup: fullSample, CPU: fullSample.CPU, Memory: fullSample.Memory,
		WritableLayer: &image.Usage{UsedBytes: 40960},
		Filesystem:    &container.FilesystemStats{CapacityBytes: 100 << 30, InodesTotal: 6_000_000, InodesFree: 5_000_000},
	}
	fullPodStats = &sandbox.Stats{
		Timestamp: now, Cgroup: fullSample, CPU: fullSample.CPU, Memory: fullSample.Memory,
		Network: []sandbox.InterfaceStats{
			{Name: "eth0", RxBytes: 1000, RxPackets: 10, RxDropped: 1, RxErrors: 2, TxBytes: 500, TxPackets: 5, TxDropped: 3, TxErrors: 4},
			{Name: "net1", RxBytes: 1},
		},
	}
)

// TestMetricsAsDescribed: whatever a pod or container reports, every
// metric is described and has a value for each of its descriptor's label
// keys; a fully known pod reports every described metric.
func TestMetricsAsDescribed(t *testing.T) {
	keys := map[string][]string{}
	for _, d := range metricDescriptors {
		keys[d.Name] = d.LabelKeys
	}
	for _, tc := range []struct {
		name    string
		metrics []*runtimeapi.Metric
		all     bool // every descriptor is reported
	}{
		{"full", append(podLevelMetrics(testPod, fullPodStats), containerLevelMetrics(testPod, critestCtr, fullCtrStats)...), true},
		{"pod without cgroup or network", podLevelMetrics(testPod, &sandbox.Stats{Timestamp: now}), false},
		{"container not running", containerLevelMetrics(testPod, &container.Container{ID: "c2", Name: "x"}, &container.Stats{Timestamp: now}), false},
		{"container without limits", containerLevelMetrics(testPod, &container.Container{ID: "c3", Spec: &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr[int64](-1)}}}}}, fullCtrStats), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reported := map[string]bool{}
			for _, m := range tc.metrics {
				k, ok := keys[m.Name]
				if !ok {
					t.Errorf("%s is not described", m.Name)
					continue
				}
				if len(m.LabelValues) != len(k) || m.Value == nil || m.Timestamp != now.UnixNano() {
					t.Errorf("%s: %d label values %v for keys %v, value %v, timestamp %d", m.Name, len(m.LabelValues), m.LabelValues, k, m.Value, m.Timestamp)
				}
				reported[m.Name] = true
			}
			for _, d := range metricDescriptors {
				if tc.all && !reported[d.Name] {
					t.Errorf("%s is never reported", d.Name)
				}
			}
		})
	}
}

func TestMetricValues(t *testing.T) {
	got := map[string]*runtimeapi.Metric{}
	key := func(m *runtimeapi.Metric) string {
		k := m.Name
		for _, l := range m.LabelValues[len(baseLabelKeys):] {
			k += "/" + l
		}
		return k
	}
	for _, m := range containerLevelMetrics(testPod, critestCtr, fullCtrStats) {
		got[key(m)] = m
		if want := []string{"ctr1", "busybox:1.36", "default", "web", "app"}; !slices.Equal(m.LabelValues[:len(baseLabelKeys)], want) {
			t.Errorf("%s labelled %v; want %v", m.Name, m.LabelValues, want)
		}
	}
	for _, m := range podLevelMetrics(testPod, fullPodStats) {
		got["pod:"+key(m)] = m
		ctr := "" // the pod cgroup, as cAdvisor labels it
		if strings.HasPrefix(m.Name, "container_network_") {
			ctr = "POD" // cAdvisor reports the network on the infra container
		}
		if want := []string{"pod1", "", "default", "web", ctr}; !slices.Equal(m.LabelValues[:len(baseLabelKeys)], want) {
			t.Errorf("pod metric %s labelled %v; want %v", m.Name, m.LabelValues, want)
		}
	}
	for k, want := range map[string]uint64{
		"container_cpu_usage_seconds_total/total":                  2, // whole seconds, truncated
		"container_cpu_user_seconds_total":                         1,
		"container_cpu_system_seconds_total":                       0,
		"container_cpu_cfs_periods_total":                          40,
		"container_cpu_cfs_throttled_periods_total":                7,
		"container_cpu_cfs_throttled_seconds_total":                3,
		"container_memory_working_set_bytes":                       8 << 20,
		"container_memory_swap":                                    4096,
		"container_memory_failures_total/pgfault/container":        90,
		"container_memory_failures_total/pgmajfault/hierarchy":     3,
		"container_oom_events_total":                               1,
		"container_threads":                                        5,
		"container_sockets":                                        1,
		"container_fs_writes_bytes_total//dev/sda":                 8192,
		"container_blkio_device_usage_total//dev/sda/8/0/Read":     4096,
		"container_hugetlb_max_usage_bytes/2MB":                    4 << 20,
		"container_pressure_cpu_waiting_seconds_total":             3,
		"container_pressure_io_stalled_seconds_total":              0,
		"container_fs_usage_bytes":                                 40960,
		"container_fs_limit_bytes":                                 100 << 30,
		"container_fs_inodes_free":                                 5_000_000,
		"container_spec_cpu_period":                                100000,
		"container_spec_cpu_quota":                                 20000,
		"container_spec_cpu_shares":                                1024,
		"container_spec_memory_limit_bytes":                        64 << 20,
		"container_spec_memory_swap_limit_bytes":                   64 << 20,
		"container_spec_memory_reservation_limit_bytes":            0,
		"container_start_time_seconds":                             uint64(started.Unix()),
		"container_last_seen":                                      uint64(now.Unix()),
		"pod:container_network_receive_packets_dropped_total/eth0": 1,
		"pod:container_network_transmit_errors_total/eth0":         4,
		"pod:container_network_receive_bytes_total/net1":           1,
		"pod:container_processes":                                  2,
	} {
		m, ok := got[k]
		if !ok {
			t.Errorf("%s not reported", k)
			continue
		}
		if m.Value.GetValue() != want {
			t.Errorf("%s = %d; want %d", k, m.Value.GetValue(), want)
		}
	}
	if m := got["container_cpu_usage_seconds_total/total"]; m.MetricType != runtimeapi.MetricType_COUNTER {
		t.Errorf("CPU usage is a %v; want a counter", m.MetricType)
	}
}
