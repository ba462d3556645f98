package cri

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/cgroup"
	"github.com/cri-runtime/cri-runtime/pkg/container"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/sandbox"
)

// The metrics served to the kubelet's CRI metrics collector, named as
// cAdvisor names them. CRI metric values are integers, so CPU time is in
// whole seconds.
var metricDescriptors = []*runtimeapi.MetricDescriptor{
	{Name: "container_cpu_usage_seconds_total", Help: "Cumulative CPU time consumed, in seconds."},
	{Name: "container_memory_usage_bytes", Help: "Current memory usage, including all memory regardless of when it was accessed."},
	{Name: "container_memory_working_set_bytes", Help: "Current working set: usage less inactive file cache."},
	{Name: "container_memory_rss", Help: "Size of RSS in bytes."},
	{Name: "container_fs_usage_bytes", Help: "Bytes used by the container's writable layer."},
	{Name: "container_network_receive_bytes_total", Help: "Cumulative bytes received.", LabelKeys: []string{"interface"}},
	{Name: "container_network_transmit_bytes_total", Help: "Cumulative bytes transmitted.", LabelKeys: []string{"interface"}},
	{Name: "container_network_receive_errors_total", Help: "Cumulative errors while receiving.", LabelKeys: []string{"interface"}},
	{Name: "container_network_transmit_errors_total", Help: "Cumulative errors while transmitting.", LabelKeys: []string{"interface"}},
}

// ListMetricDescriptors describes the metrics ListPodSandboxMetrics reports.
func (s *runtimeService) ListMetricDescriptors(context.Context, *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	return &runtimeapi.ListMetricDescriptorsResponse{Descriptors: metricDescriptors}, nil
}

// ListPodSandboxMetrics reports, for every ready pod, its network and cgroup
// usage and its running containers' CPU, memory and writable layer.
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
		st, err := s.opts.Sandboxes.Stats(sb.ID)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		pm := &runtimeapi.PodSandboxMetrics{PodSandboxId: sb.ID, Metrics: usageMetrics(st.Timestamp, st.CPU, st.Memory)}
		for _, n := range st.Network {
			ts := st.Timestamp.UnixNano()
			pm.Metrics = append(pm.Metrics,
				metric("container_network_receive_bytes_total", ts, runtimeapi.MetricType_COUNTER, n.RxBytes, n.Name),
				metric("container_network_transmit_bytes_total", ts, runtimeapi.MetricType_COUNTER, n.TxBytes, n.Name),
				metric("container_network_receive_errors_total", ts, runtimeapi.MetricType_COUNTER, n.RxErrors, n.Name),
				metric("container_network_transmit_errors_total", ts, runtimeapi.MetricType_COUNTER, n.TxErrors, n.Name))
		}
		for _, c := range s.opts.Containers.List(container.Filter{PodID: sb.ID, State: container.Running}) {
			cst, err := s.opts.Containers.Stats(c.ID)
			if err != nil {
				continue // removed meanwhile
			}
			cm := &runtimeapi.ContainerMetrics{ContainerId: c.ID, Metrics: usageMetrics(cst.Timestamp, cst.CPU, cst.Memory)}
			if w := cst.WritableLayer; w != nil {
				cm.Metrics = append(cm.Metrics, metric("container_fs_usage_bytes", w.Timestamp.UnixNano(), runtimeapi.MetricType_GAUGE, w.UsedBytes))
			}
			pm.ContainerMetrics = append(pm.ContainerMetrics, cm)
		}
		out = append(out, pm)
	}
	return out, nil
}

// usageMetrics turns CPU and memory readings (either may be nil) into metrics.
func usageMetrics(at time.Time, cpu *cgroup.CPUStats, mem *cgroup.MemoryStats) []*runtimeapi.Metric {
	ts := at.UnixNano()
	var out []*runtimeapi.Metric
	if cpu != nil {
		out = append(out, metric("container_cpu_usage_seconds_total", ts, runtimeapi.MetricType_COUNTER, cpu.UsageCoreNanoSeconds/uint64(time.Second)))
	}
	if mem != nil {
		out = append(out,
			metric("container_memory_usage_bytes", ts, runtimeapi.MetricType_GAUGE, mem.UsageBytes),
			metric("container_memory_working_set_bytes", ts, runtimeapi.MetricType_GAUGE, mem.WorkingSetBytes),
			metric("container_memory_rss", ts, runtimeapi.MetricType_GAUGE, mem.RSSBytes))
	}
	return out
}

func metric(name string, ts int64, typ runtimeapi.MetricType, v uint64, labels ...string) *runtimeapi.Metric {
	return &runtimeapi.Metric{Name: name, Timestamp: ts, MetricType: typ, LabelValues: labels, Value: &runtimeapi.UInt64Value{Value: v}}
}
