package cri

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/container"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/events"
)

var eventTypes = map[events.Type]runtimeapi.ContainerEventType{
	events.Created: runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT,
	events.Started: runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT,
	events.Stopped: runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT,
	events.Deleted: runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT,
}

// GetContainerEvents streams pod and container lifecycle events, each with
// the pod's status and its containers' statuses at the time it is sent, as
// the kubelet's evented PLEG consumes them. Headers are sent as soon as the
// subscription exists. A client that falls behind has its stream ended
// (Unavailable), to resubscribe and relist.
func (s *runtimeService) GetContainerEvents(_ *runtimeapi.GetEventsRequest, stream grpc.ServerStreamingServer[runtimeapi.ContainerEventResponse]) error {
	ch, stop := s.opts.Events.Subscribe()
	defer stop()
	// Headers now: a client that has them knows every later event reaches it.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case e, ok := <-ch:
			if !ok {
				return fmt.Errorf("event stream fell behind; subscribe again and relist: %w", errdefs.ErrUnavailable)
			}
			if err := stream.Send(s.eventResponse(e)); err != nil {
				return err
			}
		}
	}
}

func (s *runtimeService) eventResponse(e events.Event) *runtimeapi.ContainerEventResponse {
	resp := &runtimeapi.ContainerEventResponse{ContainerId: e.ContainerID, ContainerEventType: eventTypes[e.Type], CreatedAt: e.At.UnixNano()}
	if sb, err := s.opts.Sandboxes.Get(e.PodID); err == nil {
		resp.PodSandboxStatus = podStatus(sb)
	}
	for _, c := range s.opts.Containers.List(container.Filter{PodID: e.PodID}) {
		if c.PodID == e.PodID {
			resp.ContainersStatuses = append(resp.ContainersStatuses, containerStatus(c))
		}
	}
	return resp
}
