package cri

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/container"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// ContainerStats reports a container's CPU, memory and writable layer.
func (s *runtimeService) ContainerStats(_ context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	c, err := s.opts.Containers.Get(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	st, err := s.containerStats(c)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: st}, nil
}

// ListContainerStats reports the stats of the running containers matching
// the filter; one removed meanwhile is skipped.
func (s *runtimeService) ListContainerStats(_ context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	stats, err := s.listContainerStats(req.GetFilter())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListContainerStatsResponse{Stats: stats}, nil
}

// StreamContainerStats is ListContainerStats in batches, ended by EOF.
func (s *runtimeService) StreamContainerStats(req *runtimeapi.StreamContainerStatsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamContainerStatsResponse]) error {
	stats, err := s.listContainerStats(req.GetFilter())
	if err != nil {
		return err
	}
	return inBatches(stats, func(b []*runtimeapi.ContainerStats) error {
		return stream.Send(&runtimeapi.StreamContainerStatsResponse{ContainerStats: b})
	})
}

func (s *runtimeService) listContainerStats(f *runtimeapi.ContainerStatsFilter) ([]*runtimeapi.ContainerStats, error) {
	var out []*runtimeapi.ContainerStats
	for _, c := range s.opts.Containers.List(container.Filter{ID: f.GetId(), PodID: f.GetPodSandboxId(), Labels: f.GetLabelSelector(), State: container.Running}) {
		st, err := s.containerStats(c)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func (s *runtimeService) containerStats(c *container.Container) (*runtimeapi.ContainerStats, error) {
	st, err := s.opts.Containers.Stats(c.ID, container.StatsUsage)
	if err != nil {
		return nil, err
	}
	ts := st.Timestamp.UnixNano()
	out := &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{Id: c.ID, Metadata: &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: c.Attempt}, Labels: c.Labels, Annotations: c.Annotations},
		Cpu:        cpuUsage(ts, st.CPU),
		Memory:     memoryUsage(ts, st.Memory),
	}
	if w := st.WritableLayer; w != nil {
		out.WritableLayer = &runtimeapi.FilesystemUsage{
			Timestamp:  w.Timestamp.UnixNano(),
			FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: w.Mountpoint},
			UsedBytes:  &runtimeapi.UInt64Value{Value: w.UsedBytes},
			InodesUsed: &runtimeapi.UInt64Value{Value: w.InodesUsed},
		}
	}
	return out, nil
}

// cpuUsage and memoryUsage convert cgroup readings (nil stays nil).
func cpuUsage(ts int64, c *container.CPUStats) *runtimeapi.CpuUsage {
	if c == nil {
		return nil
	}
	out := &runtimeapi.CpuUsage{Timestamp: ts, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: c.UsageCoreNanoSeconds}}
	if c.UsageNanoCores != nil {
		out.UsageNanoCores = &runtimeapi.UInt64Value{Value: *c.UsageNanoCores}
	}
	return out
}

func memoryUsage(ts int64, m *container.MemoryStats) *runtimeapi.MemoryUsage {
	if m == nil {
		return nil
	}
	out := &runtimeapi.MemoryUsage{
		Timestamp:       ts,
		WorkingSetBytes: &runtimeapi.UInt64Value{Value: m.WorkingSetBytes},
		UsageBytes:      &runtimeapi.UInt64Value{Value: m.UsageBytes},
		RssBytes:        &runtimeapi.UInt64Value{Value: m.RSSBytes},
		PageFaults:      &runtimeapi.UInt64Value{Value: m.PageFaults},
		MajorPageFaults: &runtimeapi.UInt64Value{Value: m.MajorPageFaults},
	}
	if m.AvailableBytes != nil {
		out.AvailableBytes = &runtimeapi.UInt64Value{Value: *m.AvailableBytes}
	}
	return out
}
