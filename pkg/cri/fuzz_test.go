package cri

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/container"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/oci/spec"
	"github.com/cri-runtime/cri-runtime/pkg/sandbox"
	"github.com/cri-runtime/cri-runtime/pkg/streaming"
)

// fuzzRPCs are the calls FuzzValidateRequest sends: the first input byte
// picks one (modulo the length), the rest is its request in protobuf. Only
// append: the committed corpus names calls by their index. GetContainerEvents
// is left out, as it streams until the client goes away.
var fuzzRPCs = []struct {
	method string
	req    proto.Message // the request type, empty
}{
	{runtimeapi.RuntimeService_RunPodSandbox_FullMethodName, &runtimeapi.RunPodSandboxRequest{}},
	{runtimeapi.RuntimeService_CreateContainer_FullMethodName, &runtimeapi.CreateContainerRequest{}},
	{runtimeapi.RuntimeService_Exec_FullMethodName, &runtimeapi.ExecRequest{}},
	{runtimeapi.RuntimeService_ExecSync_FullMethodName, &runtimeapi.ExecSyncRequest{}},
	{runtimeapi.RuntimeService_Attach_FullMethodName, &runtimeapi.AttachRequest{}},
	{runtimeapi.RuntimeService_PortForward_FullMethodName, &runtimeapi.PortForwardRequest{}},
	{runtimeapi.RuntimeService_UpdateContainerResources_FullMethodName, &runtimeapi.UpdateContainerResourcesRequest{}},
	{runtimeapi.RuntimeService_ListContainers_FullMethodName, &runtimeapi.ListContainersRequest{}},
	{runtimeapi.ImageService_PullImage_FullMethodName, &runtimeapi.PullImageRequest{}},
	{runtimeapi.RuntimeService_UpdateRuntimeConfig_FullMethodName, &runtimeapi.UpdateRuntimeConfigRequest{}},
	{runtimeapi.RuntimeService_Version_FullMethodName, &runtimeapi.VersionRequest{}},
	{runtimeapi.RuntimeService_StopPodSandbox_FullMethodName, &runtimeapi.StopPodSandboxRequest{}},
	{runtimeapi.RuntimeService_RemovePodSandbox_FullMethodName, &runtimeapi.RemovePodSandboxRequest{}},
	{runtimeapi.RuntimeService_PodSandboxStatus_FullMethodName, &runtimeapi.PodSandboxStatusRequest{}},
	{runtimeapi.RuntimeService_ListPodSandbox_FullMethodName, &runtimeapi.ListPodSandboxRequest{}},
	{runtimeapi.RuntimeService_StreamPodSandboxes_FullMethodName, &runtimeapi.StreamPodSandboxesRequest{}},
	{runtimeapi.RuntimeService_StartContainer_FullMethodName, &runtimeapi.StartContainerRequest{}},
	{runtimeapi.RuntimeService_StopContainer_FullMethodName, &runtimeapi.StopContainerRequest{}},
	{runtimeapi.RuntimeService_RemoveContainer_FullMethodName, &runtimeapi.RemoveContainerRequest{}},
	{runtimeapi.RuntimeService_StreamContainers_FullMethodName, &runtimeapi.StreamContainersRequest{}},
	{runtimeapi.RuntimeService_ContainerStatus_FullMethodName, &runtimeapi.ContainerStatusRequest{}},
	{runtimeapi.RuntimeService_ReopenContainerLog_FullMethodName, &runtimeapi.ReopenContainerLogRequest{}},
	{runtimeapi.RuntimeService_ContainerStats_FullMethodName, &runtimeapi.ContainerStatsRequest{}},
	{runtimeapi.RuntimeService_ListContainerStats_FullMethodName, &runtimeapi.ListContainerStatsRequest{}},
	{runtimeapi.RuntimeService_StreamContainerStats_FullMethodName, &runtimeapi.StreamContainerStatsRequest{}},
	{runtimeapi.RuntimeService_PodSandboxStats_FullMethodName, &runtimeapi.PodSandboxStatsRequest{}},
	{runtimeapi.RuntimeService_ListPodSandboxStats_FullMethodName, &runtimeapi.ListPodSandboxStatsRequest{}},
	{runtimeapi.RuntimeService_StreamPodSandboxStats_FullMethodName, &runtimeapi.StreamPodSandboxStatsRequest{}},
	{runtimeapi.RuntimeService_Status_FullMethodName, &runtimeapi.StatusRequest{}},
	{runtimeapi.RuntimeService_CheckpointContainer_FullMethodName, &runtimeapi.CheckpointContainerRequest{}},
	{runtimeapi.RuntimeService_CheckpointPod_FullMethodName, &runtimeapi.CheckpointPodRequest{}},
	{runtimeapi.RuntimeService_RestorePod_FullMethodName, &runtimeapi.RestorePodRequest{}},
	{runtimeapi.RuntimeService_ListMetricDescriptors_FullMethodName, &runtimeapi.ListMetricDescriptorsRequest{}},
	{runtimeapi.RuntimeService_ListPodSandboxMetrics_FullMethodName, &runtimeapi.ListPodSandboxMetricsRequest{}},
	{runtimeapi.RuntimeService_StreamPodSandboxMetrics_FullMethodName, &runtimeapi.StreamPodSandboxMetricsRequest{}},
	{runtimeapi.RuntimeService_RuntimeConfig_FullMethodName, &runtimeapi.RuntimeConfigRequest{}},
	{runtimeapi.RuntimeService_UpdatePodSandboxResources_FullMethodName, &runtimeapi.UpdatePodSandboxResourcesRequest{}},
	{runtimeapi.ImageService_ListImages_FullMethodName, &runtimeapi.ListImagesRequest{}},
	{runtimeapi.ImageService_StreamImages_FullMethodName, &runtimeapi.StreamImagesRequest{}},
	{runtimeapi.ImageService_ImageStatus_FullMethodName, &runtimeapi.ImageStatusRequest{}},
	{runtimeapi.ImageService_RemoveImage_FullMethodName, &runtimeapi.RemoveImageRequest{}},
	{runtimeapi.ImageService_ImageFsInfo_FullMethodName, &runtimeapi.ImageFsInfoRequest{}},
}

// streamingRPCs are the server-streaming methods of both services.
var streamingRPCs = func() map[string]bool {
	out := map[string]bool{}
	for _, desc := range []grpc.ServiceDesc{runtimeapi.RuntimeService_ServiceDesc, runtimeapi.ImageService_ServiceDesc} {
		for _, st := range desc.Streams {
			out["/"+desc.ServiceName+"/"+st.StreamName] = true
		}
	}
	return out
}()

// fuzzInput encodes req as FuzzValidateRequest reads it.
func fuzzInput(tb testing.TB, req proto.Message) []byte {
	tb.Helper()
	name := req.ProtoReflect().Descriptor().FullName()
	for i, rpc := range fuzzRPCs {
		if rpc.req.ProtoReflect().Descriptor().FullName() == name {
			data, err := proto.Marshal(req)
			if err != nil {
				tb.Fatal(err)
			}
			return append([]byte{byte(i)}, data...)
		}
	}
	tb.Fatalf("no fuzzed call takes %s", name)
	return nil
}

// FuzzValidateRequest decodes a request of any CRI call and checks, without
// a panic anywhere, that:
//   - validateRequest accepts it or names a field, as InvalidArgument;
//   - the pure conversions of pkg/cri (and the spec helpers the container
//     service applies next) accept it or refuse it as InvalidArgument;
//   - the gRPC server, through the whole interceptor chain and handler,
//     answers it with the validation error when there is one, and never with
//     Internal or Unknown: the recovery interceptor turns a handler's panic
//     into Internal, which the logged stack then explains.
//
// The fakes behind the server find every pod and container, so that the
// handlers that look one up (Exec, Attach, PortForward, the statuses) go on
// with the request; Exec, Attach and PortForward reach a real streaming
// server.
func FuzzValidateRequest(f *testing.F) {
	for _, req := range fuzzSeedRequests() {
		f.Add(fuzzInput(f, req))
	}
	for i := range fuzzRPCs {
		f.Add([]byte{byte(i)}) // the empty request of every call
	}
	// Bytes no well-behaved client sends: a truncated varint, a length past
	// the end, a string that is not UTF-8, a port as a ten-byte varint, and
	// a string field sent as a varint.
	f.Add([]byte{1, 0x0a, 0xff})
	f.Add([]byte{1, 0x12, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{2, 0x0a, 0x02, 0xc3, 0x28})
	f.Add([]byte{5, 0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Add([]byte{5, 0x08, 0x01})

	conn, logs := fuzzServer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		rpc := fuzzRPCs[int(data[0])%len(fuzzRPCs)]
		req := rpc.req.ProtoReflect().New().Interface()
		if err := proto.Unmarshal(data[1:], req); err != nil {
			return // the gRPC server refuses it before any of our code
		}

		verr := validateRequest(req)
		if verr != nil && !errors.Is(verr, errdefs.ErrInvalidArgument) {
			t.Fatalf("validateRequest(%v) = %v; want an InvalidArgument error", req, verr)
		}
		fuzzConversions(t, req)

		logs.Reset()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := fuzzCall(ctx, conn, rpc.method, req)
		st := status.Convert(err)
		switch {
		case strings.Contains(st.Message(), "internal error in"):
			t.Fatalf("%s panicked on %v: %s\n%s", rpc.method, req, st.Message(), logs)
		case st.Code() == codes.Internal || st.Code() == codes.Unknown || st.Code() == codes.DeadlineExceeded:
			t.Fatalf("%s answered %v on %v: %s\n%s", rpc.method, st.Code(), req, st.Message(), logs)
		case verr != nil && (st.Code() != codes.InvalidArgument || st.Message() != verr.Error()):
			t.Fatalf("%s answered %v %q; want the validation error %q", rpc.method, st.Code(), st.Message(), verr)
		}
	})
}

// fuzzConversions calls the pure helpers that turn a request into domain
// types: they must take any request, nil fields included, and refuse only
// with InvalidArgument.
func fuzzConversions(t *testing.T, req proto.Message) {
	t.Helper()
	wantInvalid := func(what string, err error) {
		t.Helper()
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("%s on %v: %v; want an InvalidArgument error", what, req, err)
		}
	}
	linuxResources := func(r container.Resources) {
		t.Helper()
		_, err := spec.LinuxResources(r.Spec(), nil)
		wantInvalid("spec.LinuxResources", err)
	}
	switch r := req.(type) {
	case *runtimeapi.RunPodSandboxRequest:
		_, err := sandboxConfig(r.GetConfig())
		wantInvalid("sandboxConfig", err)
	case *runtimeapi.CreateContainerRequest:
		creq, err := createRequest(r)
		wantInvalid("createRequest", err)
		if err == nil {
			_, err = spec.StopSignal(creq.StopSignal, "")
			wantInvalid("spec.StopSignal", err)
			linuxResources(creq.Resources)
		}
		_, err = sandboxConfig(r.GetSandboxConfig())
		wantInvalid("sandboxConfig", err)
	case *runtimeapi.UpdateContainerResourcesRequest:
		linuxResources(containerResources(r.GetLinux()))
	case *runtimeapi.UpdatePodSandboxResourcesRequest:
		_, _ = resources(r.GetOverhead()), resources(r.GetResources())
	case *runtimeapi.PullImageRequest:
		_, err := pullAuth(r.GetAuth())
		wantInvalid("pullAuth", err)
	case *runtimeapi.ListContainersRequest:
		_ = containerFilter(r.GetFilter())
	case *runtimeapi.ListPodSandboxRequest:
		_ = podFilter(r.GetFilter())
	}
}

// fuzzCall sends req to method and reads the answer, or every message of a
// stream, into an Empty.
func fuzzCall(ctx context.Context, conn *grpc.ClientConn, method string, req proto.Message) error {
	if !streamingRPCs[method] {
		return conn.Invoke(ctx, method, req, &emptypb.Empty{})
	}
	cs, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, method)
	if err != nil {
		return err
	}
	if err := cs.SendMsg(req); err != nil {
		return err
	}
	if err := cs.CloseSend(); err != nil {
		return err
	}
	for {
		if err := cs.RecvMsg(&emptypb.Empty{}); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// fuzzServer serves NewServer on an in-memory listener for the whole fuzzing
// process. Its logger keeps errors only (a panic's stack, a failed call), in
// the returned buffer, for the failure message.
func fuzzServer(f *testing.F) (*grpc.ClientConn, *lockedBuffer) {
	logs := &lockedBuffer{}
	opts := testOptions()
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelError}))
	opts.Containers = foundContainers{opts.Containers}
	opts.Sandboxes = foundSandboxes{opts.Sandboxes}
	streams, err := streaming.New(streaming.Options{Address: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { streams.Close() })
	opts.Streams = streams

	s := NewServer(opts)
	lis := bufconn.Listen(1 << 20)
	go func() { _ = s.Serve(lis) }()
	f.Cleanup(s.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { conn.Close() })
	return conn, logs
}

// foundContainers finds every container, running.
type foundContainers struct{ Containers }

func (foundContainers) Get(id string) (*container.Container, error) {
	return &container.Container{ID: id, PodID: strings.Repeat("1", 64), Name: "c", State: container.Running, CreatedAt: time.Now()}, nil
}

// foundSandboxes finds every pod, ready.
type foundSandboxes struct{ Sandboxes }

func (foundSandboxes) Get(id string) (*sandbox.Sandbox, error) {
	return &sandbox.Sandbox{ID: id, State: sandbox.Ready, CreatedAt: time.Now()}, nil
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fuzzSeedRequests are requests as the kubelet and crictl send them, and
// some as a hostile client would.
func fuzzSeedRequests() []proto.Message {
	podID, ctrID := strings.Repeat("ab", 32), strings.Repeat("cd", 32)
	podConfig := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "nginx-7d9f", Namespace: "default", Uid: "0b6c4a55-4c2e-4a37-9a54-5b1b3ad2c1f0", Attempt: 1},
		Hostname:     "nginx-7d9f",
		LogDirectory: "/var/log/pods/default_nginx-7d9f_0b6c4a55-4c2e-4a37-9a54-5b1b3ad2c1f0",
		DnsConfig:    &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"default.svc.cluster.local", "svc.cluster.local"}, Options: []string{"ndots:5"}},
		PortMappings: []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: 8080, HostIp: "0.0.0.0"}, {Protocol: runtimeapi.Protocol_UDP, ContainerPort: 53}},
		Labels:       map[string]string{"app": "nginx", "io.kubernetes.pod.name": "nginx-7d9f"},
		Annotations:  map[string]string{"kubernetes.io/config.source": "api"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: "/kubepods/besteffort/pod0b6c4a55-4c2e-4a37-9a54-5b1b3ad2c1f0",
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD},
				Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
			},
			Sysctls:   map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"},
			Overhead:  &runtimeapi.LinuxContainerResources{CpuShares: 2, MemoryLimitInBytes: 1 << 20},
			Resources: &runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 50000, MemoryLimitInBytes: 1 << 28},
		},
	}
	create := &runtimeapi.CreateContainerRequest{
		PodSandboxId: podID,
		Config: &runtimeapi.ContainerConfig{
			Metadata:   &runtimeapi.ContainerMetadata{Name: "nginx"},
			Image:      &runtimeapi.ImageSpec{Image: "sha256:" + strings.Repeat("e1", 32), UserSpecifiedImage: "nginx:1.27"},
			Command:    []string{"/docker-entrypoint.sh"},
			Args:       []string{"nginx", "-g", "daemon off;"},
			WorkingDir: "/usr/share/nginx",
			Envs:       []*runtimeapi.KeyValue{{Key: "KUBERNETES_SERVICE_HOST", Value: []byte("10.96.0.1")}, {Key: "KUBERNETES_SERVICE_PORT", Value: []byte("443")}},
			Mounts: []*runtimeapi.Mount{
				{ContainerPath: "/var/run/secrets/kubernetes.io/serviceaccount", HostPath: "/var/lib/kubelet/pods/0b6c/volumes/kubernetes.io~projected/kube-api-access", Readonly: true, RecursiveReadOnly: true},
				{ContainerPath: "/etc/hosts", HostPath: "/var/lib/kubelet/pods/0b6c/etc-hosts"},
				{ContainerPath: "/dev/termination-log", HostPath: "/var/lib/kubelet/pods/0b6c/containers/nginx/1a2b", Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
			},
			Devices:     []*runtimeapi.Device{{ContainerPath: "/dev/fuse", HostPath: "/dev/fuse", Permissions: "rwm"}},
			Labels:      map[string]string{"io.kubernetes.container.name": "nginx"},
			Annotations: map[string]string{"io.kubernetes.container.restartCount": "0", "io.kubernetes.container.terminationMessagePath": "/dev/termination-log"},
			LogPath:     "nginx/0.log",
			StopSignal:  runtimeapi.Signal_SIGNAL_SIGQUIT,
			Linux: &runtimeapi.LinuxContainerConfig{
				Resources: &runtimeapi.LinuxContainerResources{
					CpuPeriod: 100000, CpuQuota: 20000, CpuShares: 204, MemoryLimitInBytes: 128 << 20, OomScoreAdj: 999,
					HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 0}}, Unified: map[string]string{"memory.oom.group": "1"},
				},
				SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
					Capabilities:       &runtimeapi.Capability{AddCapabilities: []string{"NET_BIND_SERVICE"}, DropCapabilities: []string{"ALL"}},
					NamespaceOptions:   &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD},
					RunAsUser:          &runtimeapi.Int64Value{Value: 101},
					RunAsGroup:         &runtimeapi.Int64Value{Value: 101},
					SupplementalGroups: []int64{2000},
					ReadonlyRootfs:     true,
					NoNewPrivs:         true,
					MaskedPaths:        []string{"/proc/acpi", "/proc/kcore"},
					ReadonlyPaths:      []string{"/proc/sys"},
					Seccomp:            &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/var/lib/kubelet/seccomp/audit.json"},
					Apparmor:           &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
				},
			},
		},
		SandboxConfig: podConfig,
	}
	// A client that fills every field with what validation lets through:
	// unknown enums, negative and extreme numbers, odd paths and profiles.
	hostile := proto.Clone(create).(*runtimeapi.CreateContainerRequest)
	hc := hostile.Config
	hc.Mounts = append(hc.Mounts, &runtimeapi.Mount{ContainerPath: "../../etc", HostPath: "", Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}, nil)
	hc.Envs = append(hc.Envs, &runtimeapi.KeyValue{Key: "", Value: []byte("=x")}, nil)
	hc.StopSignal = 1000
	hc.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuPeriod: -1, CpuQuota: math.MinInt64, CpuShares: math.MaxInt64, MemoryLimitInBytes: -1, MemorySwapLimitInBytes: -7, OomScoreAdj: math.MinInt64, HugepageLimits: []*runtimeapi.HugepageLimit{nil, {}}}
	sc := hc.Linux.SecurityContext
	sc.RunAsUser, sc.RunAsUsername = &runtimeapi.Int64Value{Value: -1}, "root:root"
	sc.NamespaceOptions = &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET, TargetId: "../" + ctrID}
	sc.Seccomp, sc.SeccompProfilePath = nil, "localhost/../../../etc/shadow"
	sc.Apparmor = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost}
	sc.SupplementalGroupsPolicy = 7
	hostile.SandboxConfig = &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "../..", Namespace: "\x00", Uid: "-"},
		PortMappings: []*runtimeapi.PortMapping{nil, {Protocol: 9, HostPort: -1, ContainerPort: 70000}},
		Linux:        &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET, Network: 5}}},
	}

	// The enums a hostile client would make up.
	badEnums := proto.Clone(create).(*runtimeapi.CreateContainerRequest)
	badEnums.Config.Mounts[0].Propagation = 42
	badEnums.Config.Linux.SecurityContext.Apparmor.ProfileType = 9

	return []proto.Message{
		&runtimeapi.RunPodSandboxRequest{Config: podConfig, RuntimeHandler: "runc"},
		&runtimeapi.RunPodSandboxRequest{Config: hostile.SandboxConfig, RuntimeHandler: "../../bin/sh"},
		create,
		hostile,
		badEnums,
		&runtimeapi.ExecRequest{ContainerId: ctrID[:12], Cmd: []string{"sh", "-c", "echo hi"}, Tty: true, Stdin: true, Stdout: true},
		&runtimeapi.ExecRequest{ContainerId: ctrID, Cmd: []string{""}, Stderr: true},
		&runtimeapi.ExecSyncRequest{ContainerId: ctrID, Cmd: []string{"cat", "/tmp/healthy"}, Timeout: 1},
		&runtimeapi.ExecSyncRequest{ContainerId: ctrID, Cmd: []string{"true"}, Timeout: math.MaxInt64},
		&runtimeapi.AttachRequest{ContainerId: ctrID, Stdin: true, Stdout: true, Stderr: true},
		&runtimeapi.PortForwardRequest{PodSandboxId: podID, Port: []int32{8080}},
		&runtimeapi.PortForwardRequest{PodSandboxId: podID, Port: []int32{0, -1, 65536, math.MaxInt32}},
		&runtimeapi.UpdateContainerResourcesRequest{ContainerId: ctrID, Linux: &runtimeapi.LinuxContainerResources{CpuQuota: 100000, MemoryLimitInBytes: 256 << 20, CpusetCpus: "0-3"}},
		&runtimeapi.UpdateContainerResourcesRequest{ContainerId: ctrID, Linux: &runtimeapi.LinuxContainerResources{CpuShares: -2, MemorySwapLimitInBytes: math.MinInt64, HugepageLimits: []*runtimeapi.HugepageLimit{{Limit: math.MaxUint64}}}},
		&runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: podID, State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}, LabelSelector: map[string]string{"app": "nginx"}}},
		&runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{State: &runtimeapi.ContainerStateValue{State: 77}}},
		&runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "busybox"}, Auth: &runtimeapi.AuthConfig{Auth: "dXNlcjpwYXNz"}, SandboxConfig: podConfig},
		&runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "registry.example.com:5000/a/b@sha256:" + strings.Repeat("0", 64)}, Auth: &runtimeapi.AuthConfig{Auth: "!!!"}},
		&runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "x"}, Auth: &runtimeapi.AuthConfig{Auth: "bm9jb2xvbg=="}},
		&runtimeapi.UpdateRuntimeConfigRequest{RuntimeConfig: &runtimeapi.RuntimeConfig{NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: "10.244.1.0/24,fd00:10:244:1::/64"}}},
		&runtimeapi.StopContainerRequest{ContainerId: ctrID, Timeout: math.MinInt64},
		&runtimeapi.ContainerStatusRequest{ContainerId: ctrID, Verbose: true},
		&runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID, Verbose: true},
		&runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: "busybox"}, Verbose: true},
		&runtimeapi.UpdatePodSandboxResourcesRequest{PodSandboxId: podID, Overhead: &runtimeapi.LinuxContainerResources{}, Resources: &runtimeapi.LinuxContainerResources{CpusetMems: "0"}},
		&runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{Id: podID[:5], State: &runtimeapi.PodSandboxStateValue{State: 9}}},
		&runtimeapi.StreamContainerStatsRequest{Filter: &runtimeapi.ContainerStatsFilter{Id: ctrID}},
		&runtimeapi.RestorePodRequest{CheckpointPath: "/../../checkpoint.tar"},
	}
}
