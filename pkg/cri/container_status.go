package cri

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/container"
)

func containerState(st container.State) runtimeapi.ContainerState {
	switch st {
	case container.Created:
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case container.Running:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case container.Exited:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return runtimeapi.ContainerState_CONTAINER_UNKNOWN
}

func nanos(c *container.Container) (created, started, finished int64) {
	created = c.CreatedAt.UnixNano()
	if !c.StartedAt.IsZero() {
		started = c.StartedAt.UnixNano()
	}
	if !c.FinishedAt.IsZero() {
		finished = c.FinishedAt.UnixNano()
	}
	return
}

// ContainerStatus reports one container; an unknown ID is NotFound.
func (s *runtimeService) ContainerStatus(_ context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	c, err := s.opts.Containers.Get(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	st := containerStatus(c)
	resp := &runtimeapi.ContainerStatusResponse{Status: st}
	if req.GetVerbose() {
		info, err := json.Marshal(map[string]any{"pid": c.Pid, "podSandboxId": c.PodID, "runtimeSpec": c.Spec, "stopSignal": c.StopSignal})
		if err != nil {
			return nil, fmt.Errorf("encode container info: %w", err)
		}
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

// containerStatus converts a container's record.
func containerStatus(c *container.Container) *runtimeapi.ContainerStatus {
	created, started, finished := nanos(c)
	st := &runtimeapi.ContainerStatus{
		Id:          c.ID,
		Metadata:    &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: c.Attempt},
		State:       containerState(c.State),
		CreatedAt:   created,
		StartedAt:   started,
		FinishedAt:  finished,
		ExitCode:    int32(c.ExitCode),
		Image:       &runtimeapi.ImageSpec{Image: c.Image},
		ImageRef:    c.ImageID,
		ImageId:     c.ImageID,
		Reason:      c.Reason,
		Message:     c.Message,
		Labels:      c.Labels,
		Annotations: c.Annotations,
		LogPath:     c.LogPath,
	}
	for _, m := range c.Mounts {
		cm := &runtimeapi.Mount{ContainerPath: m.ContainerPath, HostPath: m.HostPath, Readonly: m.Readonly,
			RecursiveReadOnly: m.RecursiveReadOnly, Propagation: criPropagation(m.Propagation)}
		if m.ImageID != "" {
			// image_ref is what PullImage answered for the image.
			cm.Image = &runtimeapi.ImageSpec{Image: m.Image, ImageRef: m.ImageID.String()}
			cm.ImageSubPath = m.ImageSubPath
		}
		st.Mounts = append(st.Mounts, cm)
	}
	st.Resources = statusResources(c)
	st.User = containerUser(c)
	return st
}

// containerUser is the identity the container's process runs with, as its
// spec gives it to runc: the kubelet checks SupplementalGroupsPolicy with it.
// The supplementary groups include the primary group, as `id -G` shows them.
func containerUser(c *container.Container) *runtimeapi.ContainerUser {
	if c.Spec == nil || c.Spec.Process == nil {
		return nil
	}
	u := c.Spec.Process.User
	groups := make([]int64, 0, len(u.AdditionalGids)+1)
	groups = append(groups, int64(u.GID))
	for _, g := range u.AdditionalGids {
		if !slices.Contains(groups, int64(g)) {
			groups = append(groups, int64(g))
		}
	}
	return &runtimeapi.ContainerUser{Linux: &runtimeapi.LinuxContainerUser{
		Uid: int64(u.UID), Gid: int64(u.GID), SupplementalGroups: groups,
	}}
}

func containerFilter(f *runtimeapi.ContainerFilter) container.Filter {
	out := container.Filter{ID: f.GetId(), PodID: f.GetPodSandboxId(), Labels: f.GetLabelSelector()}
	if st := f.GetState(); st != nil {
		switch st.GetState() {
		case runtimeapi.ContainerState_CONTAINER_CREATED:
			out.State = container.Created
		case runtimeapi.ContainerState_CONTAINER_RUNNING:
			out.State = container.Running
		case runtimeapi.ContainerState_CONTAINER_EXITED:
			out.State = container.Exited
		default:
			out.State = "unknown" // matches nothing: we never lose track of a container
		}
	}
	return out
}

func containerSummaries(cs []*container.Container) []*runtimeapi.Container {
	out := make([]*runtimeapi.Container, 0, len(cs))
	for _, c := range cs {
		created, _, _ := nanos(c)
		out = append(out, &runtimeapi.Container{
			Id: c.ID, PodSandboxId: c.PodID, Metadata: &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: c.Attempt},
			Image: &runtimeapi.ImageSpec{Image: c.Image}, ImageRef: c.ImageID, ImageId: c.ImageID,
			State: containerState(c.State), CreatedAt: created, Labels: c.Labels, Annotations: c.Annotations,
		})
	}
	return out
}

// ListContainers lists containers matching the filter.
func (s *runtimeService) ListContainers(_ context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	return &runtimeapi.ListContainersResponse{Containers: containerSummaries(s.opts.Containers.List(containerFilter(req.GetFilter())))}, nil
}

// StreamContainers is ListContainers in batches, ended by EOF.
func (s *runtimeService) StreamContainers(req *runtimeapi.StreamContainersRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamContainersResponse]) error {
	items := containerSummaries(s.opts.Containers.List(containerFilter(req.GetFilter())))
	return inBatches(items, func(b []*runtimeapi.Container) error {
		return stream.Send(&runtimeapi.StreamContainersResponse{Containers: b})
	})
}

// statusResources reports the limits the container runs with (updated by
// UpdateContainerResources), which the kubelet's in-place resize reads.
func statusResources(c *container.Container) *runtimeapi.ContainerResources {
	if c.Spec == nil || c.Spec.Linux == nil || c.Spec.Linux.Resources == nil {
		return nil
	}
	r := c.Spec.Linux.Resources
	out := &runtimeapi.LinuxContainerResources{}
	if cpu := r.CPU; cpu != nil {
		if cpu.Period != nil {
			out.CpuPeriod = int64(*cpu.Period)
		}
		if cpu.Quota != nil {
			out.CpuQuota = *cpu.Quota
		}
		if cpu.Shares != nil {
			out.CpuShares = int64(*cpu.Shares)
		}
		out.CpusetCpus, out.CpusetMems = cpu.Cpus, cpu.Mems
	}
	if m := r.Memory; m != nil {
		if m.Limit != nil {
			out.MemoryLimitInBytes = *m.Limit
		}
		if m.Swap != nil {
			out.MemorySwapLimitInBytes = *m.Swap
		}
	}
	if c.Spec.Process != nil && c.Spec.Process.OOMScoreAdj != nil {
		out.OomScoreAdj = int64(*c.Spec.Process.OOMScoreAdj)
	}
	return &runtimeapi.ContainerResources{Linux: out}
}
