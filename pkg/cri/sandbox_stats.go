package cri

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/container"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/sandbox"
)

func nowNano() int64 { return time.Now().UnixNano() }

// PodSandboxStats reports the pod cgroup's CPU and memory and the pod's
// network interface counters.
func (s *runtimeService) PodSandboxStats(_ context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	sb, err := s.opts.Sandboxes.Get(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	st, err := s.podStats(sb)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: st}, nil
}

// ListPodSandboxStats reports the stats of every ready pod matching the
// filter (a stopped pod runs nothing); a pod removed meanwhile is skipped.
func (s *runtimeService) ListPodSandboxStats(_ context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	stats, err := s.listPodStats(req.GetFilter())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxStatsResponse{Stats: stats}, nil
}

// StreamPodSandboxStats is ListPodSandboxStats in batches, ended by EOF.
func (s *runtimeService) StreamPodSandboxStats(req *runtimeapi.StreamPodSandboxStatsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxStatsResponse]) error {
	stats, err := s.listPodStats(req.GetFilter())
	if err != nil {
		return err
	}
	return inBatches(stats, func(b []*runtimeapi.PodSandboxStats) error {
		return stream.Send(&runtimeapi.StreamPodSandboxStatsResponse{PodSandboxStats: b})
	})
}

func (s *runtimeService) listPodStats(f *runtimeapi.PodSandboxStatsFilter) ([]*runtimeapi.PodSandboxStats, error) {
	var out []*runtimeapi.PodSandboxStats
	for _, sb := range s.opts.Sandboxes.List(sandbox.Filter{ID: f.GetId(), Labels: f.GetLabelSelector(), State: sandbox.Ready}) {
		st, err := s.podStats(sb)
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

func (s *runtimeService) podStats(sb *sandbox.Sandbox) (*runtimeapi.PodSandboxStats, error) {
	st, err := s.opts.Sandboxes.Stats(sb.ID, container.StatsUsage)
	if err != nil {
		return nil, err
	}
	ts := st.Timestamp.UnixNano()
	linux := &runtimeapi.LinuxPodSandboxStats{}
	linux.Cpu = cpuUsage(ts, st.CPU)
	linux.Memory = memoryUsage(ts, st.Memory)
	if len(st.Network) > 0 {
		linux.Network = &runtimeapi.NetworkUsage{Timestamp: ts}
		for i, n := range st.Network {
			iface := &runtimeapi.NetworkInterfaceUsage{
				Name:     n.Name,
				RxBytes:  &runtimeapi.UInt64Value{Value: n.RxBytes},
				RxErrors: &runtimeapi.UInt64Value{Value: n.RxErrors},
				TxBytes:  &runtimeapi.UInt64Value{Value: n.TxBytes},
				TxErrors: &runtimeapi.UInt64Value{Value: n.TxErrors},
			}
			if i == 0 {
				linux.Network.DefaultInterface = iface
			} else {
				linux.Network.Interfaces = append(linux.Network.Interfaces, iface)
			}
		}
	}
	return &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{Id: sb.ID, Metadata: podMetadata(sb.Config.Metadata), Labels: sb.Config.Labels, Annotations: sb.Config.Annotations},
		Linux:      linux,
	}, nil
}
