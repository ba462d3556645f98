package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// critestMetricNames is what critest v1.37 (cri-tools pkg/validate/pod.go)
// expects from ListMetricDescriptors: the metrics the kubelet exposed
// through cAdvisor.
var critestMetricNames = []string{
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
	"container_ulimits_soft",
}

// critestUnimplemented may be missing altogether; critestOptional may be
// described but have no value (block I/O accounting depends on the disk;
// pressure on cgroup v2, hugetlb on the controller being there).
var (
	critestUnimplemented = []string{
		"container_hugetlb_max_usage_bytes", "container_hugetlb_usage_bytes",
		"container_pressure_cpu_stalled_seconds_total", "container_pressure_cpu_waiting_seconds_total",
		"container_pressure_io_stalled_seconds_total", "container_pressure_io_waiting_seconds_total",
		"container_pressure_memory_stalled_seconds_total", "container_pressure_memory_waiting_seconds_total",
		"container_spec_cpu_quota", "container_spec_memory_reservation_limit_bytes", "container_ulimits_soft",
	}
	critestOptional = []string{
		"container_blkio_device_usage_total", "container_fs_reads_bytes_total", "container_fs_reads_total",
		"container_fs_writes_bytes_total", "container_fs_writes_total",
	}
)

// TestPodSandboxMetrics checks the metrics the kubelet's CRI metrics
// collector reads, through the kubelet's CRI client, as critest's metrics
// conformance tests do ("runtime should support returning metrics
// descriptors", "... listing pod sandbox metrics"), with critest's
// container: limited to 20% of a CPU and 64 MiB (64 MiB with swap), ten
// files written in its writable layer. Beyond critest, the values must be
// the container's: its limits, its CPU time and throttling, its 8 MiB file.
func TestPodSandboxMetrics(t *testing.T) {
	t.Parallel()
	d, _ := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "metrics")
	cfg := shCfg("busy", "head -c 8m /dev/zero > /tmp/f; while :; do :; done")
	cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{
		CpuPeriod: 100000, CpuQuota: 20000, CpuShares: 1024,
		MemoryLimitInBytes: 64 << 20, MemorySwapLimitInBytes: 64 << 20,
	}
	before := time.Now().Add(-time.Second)
	ctr := runCtr(t, d, pod, podCfg, cfg)
	ctx := ctxT(t)
	script := "mkdir -p /var/lib/mydisktest && for i in $(seq 1 10); do echo hi >> /var/lib/mydisktest/inode_test_file_$i; done; sync"
	if _, stderr, err := d.Runtime.ExecSync(ctx, ctr, []string{"/bin/sh", "-c", script}, 30*time.Second); err != nil {
		t.Fatalf("ExecSync: %v, stderr %q", err, stderr)
	}

	descs, err := d.Runtime.ListMetricDescriptors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	for _, d := range descs {
		keys[d.Name] = d.LabelKeys
		if d.Help == "" || len(d.LabelKeys) == 0 {
			t.Errorf("descriptor %s has help %q and label keys %v; critest wants both", d.Name, d.Help, d.LabelKeys)
		}
	}
	for _, n := range critestMetricNames {
		if _, ok := keys[n]; !ok && !slices.Contains(critestUnimplemented, n) {
			t.Errorf("%s is not described", n)
		}
	}

	// values by name and label values beyond the base ones (id, image,
	// namespace, pod, container), e.g. "container_memory_failures_total/pgfault/container"
	var (
		pm  *runtimeapi.PodSandboxMetrics
		got map[string]uint64
	)
	if !eventually(30*time.Second, func() bool {
		all, err := d.Runtime.ListPodSandboxMetrics(ctx)
		if err != nil || len(all) != 1 || all[0].PodSandboxId != pod {
			t.Fatalf("ListPodSandboxMetrics = %v, %v; want the one pod", all, err)
		}
		pm = all[0]
		if len(pm.ContainerMetrics) != 1 || pm.ContainerMetrics[0].ContainerId != ctr {
			t.Fatalf("container metrics = %v; want the running container", pm.ContainerMetrics)
		}
		got = metricValues(pm)
		return got["ctr:container_cpu_user_seconds_total"] >= 1 && got["ctr:container_fs_usage_bytes"] >= 8<<20 &&
			got["ctr:container_cpu_cfs_throttled_periods_total"] > 0
	}) {
		t.Fatalf("the busy container's metrics never showed a second of user CPU, CFS throttling and its 8 MiB file: %v", got)
	}
	t.Logf("metric values: %v", got)
	critestPodMetrics(t, pm, keys)
	for name, want := range map[string]uint64{
		"ctr:container_spec_cpu_period":              100000,
		"ctr:container_spec_cpu_quota":               20000,
		"ctr:container_spec_cpu_shares":              1024,
		"ctr:container_spec_memory_limit_bytes":      64 << 20,
		"ctr:container_spec_memory_swap_limit_bytes": 64 << 20,
	} {
		if got[name] != want {
			t.Errorf("%s = %d; want %d", name, got[name], want)
		}
	}
	for _, name := range []string{
		"ctr:container_memory_usage_bytes", "ctr:container_memory_working_set_bytes", "ctr:container_memory_max_usage_bytes",
		"ctr:container_processes", "ctr:container_threads", "ctr:container_file_descriptors",
		"ctr:container_fs_limit_bytes", "ctr:container_fs_inodes_total", "ctr:container_fs_inodes_free",
		"ctr:container_cpu_cfs_periods_total", "pod:container_memory_usage_bytes", "pod:container_processes",
	} {
		if got[name] == 0 {
			t.Errorf("%s is zero", name)
		}
	}
	if got["ctr:container_fs_inodes_free"] > got["ctr:container_fs_inodes_total"] {
		t.Errorf("more inodes free (%d) than in all (%d)", got["ctr:container_fs_inodes_free"], got["ctr:container_fs_inodes_total"])
	}
	if got["ctr:container_cpu_usage_seconds_total/total"] < got["ctr:container_cpu_user_seconds_total"] {
		t.Errorf("user CPU time above the total: %v", got)
	}
	if s := int64(got["ctr:container_start_time_seconds"]); s < before.Unix() || s > time.Now().Unix() {
		t.Errorf("start time %d; want between %d and now", s, before.Unix())
	}
	if s := int64(got["ctr:container_last_seen"]); s < before.Unix() || s > time.Now().Unix()+1 {
		t.Errorf("last seen %d; want about now", s)
	}
	if _, ok := got["pod:container_network_receive_packets_total/eth0"]; !ok {
		t.Errorf("no network metrics for the pod's eth0: %v", got)
	}
}

// metricValues are a pod's metric values by where they come from ("pod"
// or "ctr"), name, and "/" and each label value beyond the base ones (id,
// image, namespace, pod, container): "ctr:container_cpu_usage_seconds_total/total".
func metricValues(pm *runtimeapi.PodSandboxMetrics) map[string]uint64 {
	got := map[string]uint64{}
	add := func(where string, m *runtimeapi.Metric) {
		name := where + ":" + m.Name
		if len(m.LabelValues) > 5 {
			name += "/" + strings.Join(m.LabelValues[5:], "/")
		}
		got[name] += m.Value.GetValue()
	}
	for _, m := range pm.Metrics {
		add("pod", m)
	}
	for _, cm := range pm.ContainerMetrics {
		for _, m := range cm.Metrics {
			add("ctr", m)
		}
	}
	return got
}

// critestPodMetrics checks a pod's metrics as critest does: every metric
// critest expects (but the unimplemented and optional ones) is reported
// with label values, and every described metric that is reported, whether
// critest expects it or not, has a value per label key. It also checks
// what critest takes for granted: each metric is described, has a value
// and a timestamp.
func critestPodMetrics(t *testing.T, pm *runtimeapi.PodSandboxMetrics, keys map[string][]string) {
	t.Helper()
	reported := map[string]bool{}
	check := func(where string, m *runtimeapi.Metric) {
		k, described := keys[m.Name]
		if !described || len(m.LabelValues) != len(k) || m.Value == nil || m.Timestamp == 0 {
			t.Errorf("%s: metric %+v is not as described (label keys %v)", where, m, k)
		}
		if len(m.LabelValues) > 0 {
			reported[m.Name] = true
		}
	}
	for _, m := range pm.Metrics {
		check("pod", m)
	}
	for _, cm := range pm.ContainerMetrics {
		for _, m := range cm.Metrics {
			check("container "+cm.ContainerId, m)
		}
	}
	for _, n := range critestMetricNames {
		if !reported[n] && !slices.Contains(critestOptional, n) && !slices.Contains(critestUnimplemented, n) {
			t.Errorf("%s is not reported", n)
		}
	}
	for n := range keys {
		if !reported[n] && !slices.Contains(critestOptional, n) && !slices.Contains(critestUnimplemented, n) {
			t.Errorf("%s is described but not reported: critest counts that as a label mismatch", n)
		}
	}
}
