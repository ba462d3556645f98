package cri

import (
	"context"
	"encoding/json"
	"fmt"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/sandbox"
)

// PodSandboxStatus reports one pod; an unknown ID is NotFound.
func (s *runtimeService) PodSandboxStatus(_ context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	sb, err := s.opts.Sandboxes.Get(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: podStatus(sb), Timestamp: nowNano()}
	if req.GetVerbose() {
		info, err := json.Marshal(sb)
		if err != nil {
			return nil, fmt.Errorf("encode pod info: %w", err)
		}
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

func podState(st sandbox.State) runtimeapi.PodSandboxState {
	if st == sandbox.Ready {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}

func podMetadata(md sandbox.Metadata) *runtimeapi.PodSandboxMetadata {
	return &runtimeapi.PodSandboxMetadata{Name: md.Name, Namespace: md.Namespace, Uid: md.UID, Attempt: md.Attempt}
}

func nsMode(host bool) runtimeapi.NamespaceMode {
	if host {
		return runtimeapi.NamespaceMode_NODE
	}
	return runtimeapi.NamespaceMode_POD
}

func pidMode(m sandbox.PIDMode) runtimeapi.NamespaceMode {
	switch m {
	case sandbox.PIDHost:
		return runtimeapi.NamespaceMode_NODE
	case sandbox.PIDPod:
		return runtimeapi.NamespaceMode_POD
	}
	return runtimeapi.NamespaceMode_CONTAINER
}

func podStatus(sb *sandbox.Sandbox) *runtimeapi.PodSandboxStatus {
	st := &runtimeapi.PodSandboxStatus{
		Id:        sb.ID,
		Metadata:  podMetadata(sb.Config.Metadata),
		State:     podState(sb.State),
		CreatedAt: sb.CreatedAt.UnixNano(),
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: &runtimeapi.NamespaceOption{
			Network:       nsMode(sb.Config.HostNetwork),
			Pid:           pidMode(sb.Config.PIDMode),
			Ipc:           nsMode(sb.Config.HostIPC),
			UsernsOptions: usernsOptions(sb.Config.UserNS),
		}}},
		Labels:         sb.Config.Labels,
		Annotations:    sb.Config.Annotations,
		RuntimeHandler: sb.Config.RuntimeHandler,
	}
	if ips := sb.IPs(); len(ips) > 0 {
		st.Network = &runtimeapi.PodSandboxNetworkStatus{Ip: ips[0]}
		for _, ip := range ips[1:] {
			st.Network.AdditionalIps = append(st.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	}
	return st
}

// podFilter converts the CRI filter.
func podFilter(f *runtimeapi.PodSandboxFilter) sandbox.Filter {
	out := sandbox.Filter{ID: f.GetId(), Labels: f.GetLabelSelector()}
	if st := f.GetState(); st != nil {
		out.State = sandbox.NotReady
		if st.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY {
			out.State = sandbox.Ready
		}
	}
	return out
}

func podSummaries(pods []*sandbox.Sandbox) []*runtimeapi.PodSandbox {
	out := make([]*runtimeapi.PodSandbox, 0, len(pods))
	for _, sb := range pods {
		out = append(out, &runtimeapi.PodSandbox{
			Id: sb.ID, Metadata: podMetadata(sb.Config.Metadata), State: podState(sb.State), CreatedAt: sb.CreatedAt.UnixNano(),
			Labels: sb.Config.Labels, Annotations: sb.Config.Annotations, RuntimeHandler: sb.Config.RuntimeHandler,
		})
	}
	return out
}

// ListPodSandbox lists pods matching the filter (ID or ID prefix, state,
// labels).
func (s *runtimeService) ListPodSandbox(_ context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	return &runtimeapi.ListPodSandboxResponse{Items: podSummaries(s.opts.Sandboxes.List(podFilter(req.GetFilter())))}, nil
}

// StreamPodSandboxes is ListPodSandbox in batches, ended by EOF.
func (s *runtimeService) StreamPodSandboxes(req *runtimeapi.StreamPodSandboxesRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxesResponse]) error {
	items := podSummaries(s.opts.Sandboxes.List(podFilter(req.GetFilter())))
	return inBatches(items, func(b []*runtimeapi.PodSandbox) error {
		return stream.Send(&runtimeapi.StreamPodSandboxesResponse{PodSandboxes: b})
	})
}

// usernsOptions reports a pod's user namespace as the kubelet asked for it.
func usernsOptions(u *sandbox.UserNS) *runtimeapi.UserNamespace {
	if u == nil {
		return &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}
	}
	conv := func(maps []sandbox.IDMap) []*runtimeapi.IDMapping {
		out := make([]*runtimeapi.IDMapping, 0, len(maps))
		for _, m := range maps {
			out = append(out, &runtimeapi.IDMapping{ContainerId: m.ContainerID, HostId: m.HostID, Length: m.Size})
		}
		return out
	}
	return &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: conv(u.UIDs), Gids: conv(u.GIDs)}
}
