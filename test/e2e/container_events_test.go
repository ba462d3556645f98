package e2e

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestContainerEvents follows a pod and a container through their lives on
// GetContainerEvents, as the kubelet's evented PLEG does: every step
// arrives, in order, with the pod's and the containers' statuses.
func TestContainerEvents(t *testing.T) {
	t.Parallel()
	d, _ := startCtrDaemon(t)
	conn, err := grpc.NewClient("unix://"+d.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stream, err := runtimeapi.NewRuntimeServiceClient(conn).GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// The server sends headers once it has subscribed: from then on no event
	// is missed.
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}

	pod, podCfg := ctrPod(t, d, "events")
	ctr := runCtr(t, d, pod, podCfg, shCfg("quick", "exit 0"))
	d.WaitExited(t, ctr)
	if err := d.Runtime.RemoveContainer(ctx, ctr); err != nil {
		t.Fatal(err)
	}
	if err := d.Runtime.StopPodSandbox(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if err := d.Runtime.RemovePodSandbox(ctx, pod); err != nil {
		t.Fatal(err)
	}

	want := []struct {
		id  string
		typ runtimeapi.ContainerEventType
	}{
		{pod, runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT},
		{pod, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT},
		{ctr, runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT},
		{ctr, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT},
		{ctr, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT},
		{ctr, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT},
		{pod, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT},
		{pod, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT},
	}
	var last int64
	for i, w := range want {
		e, err := stream.Recv()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if e.ContainerId != w.id || e.ContainerEventType != w.typ {
			t.Fatalf("event %d = %s %v; want %s %v", i, e.ContainerId, e.ContainerEventType, w.id, w.typ)
		}
		if e.CreatedAt < last {
			t.Fatalf("event %d is older than the one before it", i)
		}
		last = e.CreatedAt
		switch {
		case w.typ != runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT && e.PodSandboxStatus.GetId() != pod:
			t.Fatalf("event %d carries pod status %v; want pod %s", i, e.PodSandboxStatus, pod)
		case w.id == ctr && w.typ == runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT:
			if len(e.ContainersStatuses) != 1 || e.ContainersStatuses[0].State != runtimeapi.ContainerState_CONTAINER_EXITED {
				t.Fatalf("stopped event carries container statuses %v; want the exited container", e.ContainersStatuses)
			}
		case w.id == ctr && w.typ == runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT:
			if len(e.ContainersStatuses) != 0 {
				t.Fatalf("deleted event still lists the container: %v", e.ContainersStatuses)
			}
		}
	}
}

// TestContainerOOMKilled runs a container past a small memory limit: the
// kernel kills it and its status says OOMKilled, as the kubelet reports it.
func TestContainerOOMKilled(t *testing.T) {
	t.Parallel()
	d, _ := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "oom")
	cfg := shCfg("hog", "head -c 200m /dev/zero | tail > /dev/null")
	cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 16 << 20}
	id := runCtr(t, d, pod, podCfg, cfg)
	st := d.WaitExited(t, id)
	if st.Reason != "OOMKilled" || st.ExitCode == 0 {
		t.Fatalf("status after exceeding 16 MiB = reason %q, exit code %d; want OOMKilled", st.Reason, st.ExitCode)
	}

	// A container that stays within its limit is not OOMKilled.
	fine := shCfg("fine", "head -c 1m /dev/zero | tail > /dev/null")
	fine.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20}
	st = d.WaitExited(t, runCtr(t, d, pod, podCfg, fine))
	if st.Reason != "Completed" || st.ExitCode != 0 {
		t.Fatalf("status within the limit = reason %q, exit code %d; want Completed", st.Reason, st.ExitCode)
	}
}
