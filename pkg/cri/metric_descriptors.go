package cri

import runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

// baseLabelKeys label every metric, as CRI-O labels them: the container's
// (or for pod-level metrics the pod's) ID, the image, and the pod and
// container names the kubelet's cAdvisor metrics carry.
var baseLabelKeys = []string{"id", "image", "namespace", "pod", "container"}

// metricDesc is one metric served to the kubelet's CRI metrics collector,
// named, typed and labelled as cAdvisor's: labels are the keys beyond
// baseLabelKeys.
type metricDesc struct {
	name, help string
	typ        runtimeapi.MetricType
	labels     []string
}

const (
	counter = runtimeapi.MetricType_COUNTER
	gauge   = runtimeapi.MetricType_GAUGE
)

// CRI metric values are integers: times are in whole seconds, truncated.
var (
	mCPUUsageSeconds        = &metricDesc{"container_cpu_usage_seconds_total", "Cumulative CPU time consumed in seconds.", counter, []string{"cpu"}}
	mCPUUserSeconds         = &metricDesc{"container_cpu_user_seconds_total", "Cumulative user CPU time consumed in seconds.", counter, nil}
	mCPUSystemSeconds       = &metricDesc{"container_cpu_system_seconds_total", "Cumulative system CPU time consumed in seconds.", counter, nil}
	mCPUCfsPeriods          = &metricDesc{"container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", counter, nil}
	mCPUCfsThrottledPeriods = &metricDesc{"container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", counter, nil}
	mCPUCfsThrottledSeconds = &metricDesc{"container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled, in seconds.", counter, nil}
	mMemoryUsage            = &metricDesc{"container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", gauge, nil}
	mMemoryWorkingSet       = &metricDesc{"container_memory_working_set_bytes", "Current working set in bytes: usage less inactive file cache.", gauge, nil}
	mMemoryRSS              = &metricDesc{"container_memory_rss", "Size of RSS in bytes.", gauge, nil}
	mMemoryCache            = &metricDesc{"container_memory_cache", "Number of bytes of page cache memory.", gauge, nil}
	mMemoryMappedFile       = &metricDesc{"container_memory_mapped_file", "Size of memory mapped files in bytes.", gauge, nil}
	mMemorySwap             = &metricDesc{"container_memory_swap", "Container swap usage in bytes.", gauge, nil}
	mMemoryKernel           = &metricDesc{"container_memory_kernel_usage", "Size of kernel memory allocated in bytes.", gauge, nil}
	mMemoryMaxUsage         = &metricDesc{"container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes.", gauge, nil}
	mMemoryFailcnt          = &metricDesc{"container_memory_failcnt", "Number of times memory usage hit the limit.", counter, nil}
	mMemoryFailures         = &metricDesc{"container_memory_failures_total", "Cumulative count of memory allocation failures.", counter, []string{"failure_type", "scope"}}
	mOomEvents              = &metricDesc{"container_oom_events_total", "Count of out of memory events observed for the container.", counter, nil}
	mProcesses              = &metricDesc{"container_processes", "Number of mProcesses running inside the container.", gauge, nil}
	mThreads                = &metricDesc{"container_threads", "Number of mThreads running inside the container.", gauge, nil}
	mThreadsMax             = &metricDesc{"container_threads_max", "Maximum number of mThreads allowed inside the container, infinity if value is zero.", gauge, nil}
	mFileDescriptors        = &metricDesc{"container_file_descriptors", "Number of open file descriptors for the container.", gauge, nil}
	mSockets                = &metricDesc{"container_sockets", "Number of open mSockets for the container.", gauge, nil}
	mFsReadsBytes           = &metricDesc{"container_fs_reads_bytes_total", "Cumulative count of bytes read.", counter, []string{"device"}}
	mFsReads                = &metricDesc{"container_fs_reads_total", "Cumulative count of reads completed.", counter, []string{"device"}}
	mFsWritesBytes          = &metricDesc{"container_fs_writes_bytes_total", "Cumulative count of bytes written.", counter, []string{"device"}}
	mFsWrites               = &metricDesc{"container_fs_writes_total", "Cumulative count of writes completed.", counter, []string{"device"}}
	mBlkioDeviceUsage       = &metricDesc{"container_blkio_device_usage_total", "Blkio device bytes usage.", counter, []string{"device", "major", "minor", "operation"}}
	mHugetlbUsage           = &metricDesc{"container_hugetlb_usage_bytes", "Current hugepage usage in bytes.", gauge, []string{"pagesize"}}
	mHugetlbMaxUsage        = &metricDesc{"container_hugetlb_max_usage_bytes", "Maximum hugepage usage recorded in bytes.", gauge, []string{"pagesize"}}
	mPressureCPUStalled     = &metricDesc{"container_pressure_cpu_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to CPU congestion.", counter, nil}
	mPressureCPUWaiting     = &metricDesc{"container_pressure_cpu_waiting_seconds_total", "Total time duration tasks in the container have waited due to CPU congestion.", counter, nil}
	mPressureMemoryStalled  = &metricDesc{"container_pressure_memory_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to memory congestion.", counter, nil}
	mPressureMemoryWaiting  = &metricDesc{"container_pressure_memory_waiting_seconds_total", "Total time duration tasks in the container have waited due to memory congestion.", counter, nil}
	mPressureIOStalled      = &metricDesc{"container_pressure_io_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to IO congestion.", counter, nil}
	mPressureIOWaiting      = &metricDesc{"container_pressure_io_waiting_seconds_total", "Total time duration tasks in the container have waited due to IO congestion.", counter, nil}
	mFsUsage                = &metricDesc{"container_fs_usage_bytes", "Bytes used by the container's writable layer.", gauge, nil}
	mFsLimit                = &metricDesc{"container_fs_limit_bytes", "Size in bytes of the filesystem holding the container's writable layer.", gauge, nil}
	mFsInodesFree           = &metricDesc{"container_fs_inodes_free", "Number of free inodes on the filesystem holding the container's writable layer.", gauge, nil}
	mFsInodesTotal          = &metricDesc{"container_fs_inodes_total", "Number of inodes on the filesystem holding the container's writable layer.", gauge, nil}
	mSpecCPUPeriod          = &metricDesc{"container_spec_cpu_period", "CPU period of the container, in microseconds.", gauge, nil}
	mSpecCPUQuota           = &metricDesc{"container_spec_cpu_quota", "CPU quota of the container, in microseconds per period.", gauge, nil}
	mSpecCPUShares          = &metricDesc{"container_spec_cpu_shares", "CPU shares of the container.", gauge, nil}
	mSpecMemoryLimit        = &metricDesc{"container_spec_memory_limit_bytes", "Memory limit for the container in bytes, 0 for none.", gauge, nil}
	mSpecMemoryReservation  = &metricDesc{"container_spec_memory_reservation_limit_bytes", "Memory reservation limit for the container in bytes, 0 for none.", gauge, nil}
	mSpecMemorySwapLimit    = &metricDesc{"container_spec_memory_swap_limit_bytes", "Memory plus swap limit for the container in bytes, 0 for none.", gauge, nil}
	mStartTime              = &metricDesc{"container_start_time_seconds", "Start time of the container since unix epoch in seconds.", gauge, nil}
	mLastSeen               = &metricDesc{"container_last_seen", "Last time the container was seen by the runtime, since unix epoch in seconds.", gauge, nil}
	mNetReceiveBytes        = &metricDesc{"container_network_receive_bytes_total", "Cumulative count of bytes received.", counter, []string{"interface"}}
	mNetReceivePackets      = &metricDesc{"container_network_receive_packets_total", "Cumulative count of packets received.", counter, []string{"interface"}}
	mNetReceiveDropped      = &metricDesc{"container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving.", counter, []string{"interface"}}
	mNetReceiveErrors       = &metricDesc{"container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", counter, []string{"interface"}}
	mNetTransmitBytes       = &metricDesc{"container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", counter, []string{"interface"}}
	mNetTransmitPackets     = &metricDesc{"container_network_transmit_packets_total", "Cumulative count of packets transmitted.", counter, []string{"interface"}}
	mNetTransmitDropped     = &metricDesc{"container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting.", counter, []string{"interface"}}
	mNetTransmitErrors      = &metricDesc{"container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.", counter, []string{"interface"}}
)

// allMetrics is every metric ListPodSandboxMetrics may report.
var allMetrics = []*metricDesc{
	mCPUUsageSeconds, mCPUUserSeconds, mCPUSystemSeconds, mCPUCfsPeriods, mCPUCfsThrottledPeriods, mCPUCfsThrottledSeconds,
	mMemoryUsage, mMemoryWorkingSet, mMemoryRSS, mMemoryCache, mMemoryMappedFile, mMemorySwap, mMemoryKernel,
	mMemoryMaxUsage, mMemoryFailcnt, mMemoryFailures, mOomEvents,
	mProcesses, mThreads, mThreadsMax, mFileDescriptors, mSockets,
	mFsReadsBytes, mFsReads, mFsWritesBytes, mFsWrites, mBlkioDeviceUsage,
	mHugetlbUsage, mHugetlbMaxUsage,
	mPressureCPUStalled, mPressureCPUWaiting, mPressureMemoryStalled, mPressureMemoryWaiting, mPressureIOStalled, mPressureIOWaiting,
	mFsUsage, mFsLimit, mFsInodesFree, mFsInodesTotal,
	mSpecCPUPeriod, mSpecCPUQuota, mSpecCPUShares, mSpecMemoryLimit, mSpecMemoryReservation, mSpecMemorySwapLimit,
	mStartTime, mLastSeen,
	mNetReceiveBytes, mNetReceivePackets, mNetReceiveDropped, mNetReceiveErrors,
	mNetTransmitBytes, mNetTransmitPackets, mNetTransmitDropped, mNetTransmitErrors,
}

// metricDescriptors are allMetrics as ListMetricDescriptors returns them.
var metricDescriptors = func() []*runtimeapi.MetricDescriptor {
	out := make([]*runtimeapi.MetricDescriptor, 0, len(allMetrics))
	for _, m := range allMetrics {
		keys := append(append([]string{}, baseLabelKeys...), m.labels...)
		out = append(out, &runtimeapi.MetricDescriptor{Name: m.name, Help: m.help, LabelKeys: keys})
	}
	return out
}()
