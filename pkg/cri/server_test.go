package cri

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/emptypb"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/container"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/events"
	"github.com/cri-runtime/cri-runtime/pkg/image"
	"github.com/cri-runtime/cri-runtime/pkg/oci"
	"github.com/cri-runtime/cri-runtime/pkg/sandbox"
	"github.com/cri-runtime/cri-runtime/pkg/sandbox/cni"
)

type fakePrograms struct{ err error }

func (f fakePrograms) Probe(context.Context) (oci.Programs, error) {
	return oci.Programs{Runtime: oci.Binary{Name: "runc", Path: "/usr/bin/runc", Version: "1.1"}}, f.err
}

type fakeNetwork struct{ err error }

func (f fakeNetwork) SetPodCIDR(string) error { return nil }
func (f fakeNetwork) PodCIDR() string         { return "" }

func (f fakeNetwork) Network(context.Context) (*cni.Network, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &cni.Network{Name: "net", Source: cni.BuiltinSource, Plugins: []string{"bridge"}}, nil
}

// fakeImages holds one image, "busybox", and fails a pull of anything else.
type fakeImages struct{}

var fakeImage = &image.Image{
	ID:       image.ID(strings.Repeat("ab", 32)),
	RepoTags: []string{"docker.io/library/busybox:latest"},
	User:     "1234:5678",
	Config:   &imgspecv1.Image{},
}

func (fakeImages) Pull(_ context.Context, name string, _ *image.Auth) (*image.Image, error) {
	if name == "busybox" {
		return fakeImage, nil
	}
	return nil, fmt.Errorf("pull %s: %w", name, errdefs.ErrNotFound)
}

func (fakeImages) List(context.Context, string) ([]*image.Image, error) {
	return []*image.Image{fakeImage}, nil
}

func (fakeImages) Status(_ context.Context, ref string) (*image.Image, error) {
	if ref == "busybox" {
		return fakeImage, nil
	}
	return nil, fmt.Errorf("image %s: %w", ref, errdefs.ErrNotFound)
}

func (fakeImages) Remove(context.Context, string) error { return nil }

func (fakeImages) FsUsage() ([]image.Usage, []image.Usage, error) {
	return []image.Usage{{Mountpoint: "/", UsedBytes: 1}}, nil, nil
}

// fakeSandboxes knows no pods.
type fakeSandboxes struct{}

func (fakeSandboxes) Run(context.Context, sandbox.Config) (*sandbox.Sandbox, error) {
	return &sandbox.Sandbox{ID: strings.Repeat("1", 64), State: sandbox.Ready}, nil
}
func (fakeSandboxes) Get(id string) (*sandbox.Sandbox, error) {
	return nil, fmt.Errorf("pod sandbox %s: %w", id, errdefs.ErrNotFound)
}
func (fakeSandboxes) List(sandbox.Filter) []*sandbox.Sandbox { return nil }
func (fakeSandboxes) Stats(id string, _ container.StatsDetail) (*sandbox.Stats, error) {
	return nil, fmt.Errorf("pod sandbox %s: %w", id, errdefs.ErrNotFound)
}
func (fakeSandboxes) UpdateResources(id string, _, _ *sandbox.Resources) error {
	return fmt.Errorf("pod sandbox %s: %w", id, errdefs.ErrNotFound)
}

// fakePods stops and removes nothing: the pods are already gone.
type fakePods struct{}

func (fakePods) Stop(context.Context, string) error   { return nil }
func (fakePods) Remove(context.Context, string) error { return nil }

// fakeContainers knows no containers.
type fakeContainers struct{}

func (fakeContainers) Create(_ context.Context, req container.CreateRequest) (*container.Container, error) {
	return nil, fmt.Errorf("pod sandbox %s: %w", req.PodID, errdefs.ErrNotFound)
}
func (fakeContainers) Start(_ context.Context, id string) error {
	return fmt.Errorf("container %s: %w", id, errdefs.ErrNotFound)
}
func (fakeContainers) Stop(context.Context, string, time.Duration) error { return nil }
func (fakeContainers) Remove(context.Context, string) error              { return nil }
func (fakeContainers) Get(id string) (*container.Container, error) {
	return nil, fmt.Errorf("container %s: %w", id, errdefs.ErrNotFound)
}
func (fakeContainers) List(container.Filter) []*container.Container { return nil }
func (fakeContainers) ExecSync(_ context.Context, id string, _ []string, _ time.Duration) (*container.ExecResult, error) {
	return nil, fmt.Errorf("container %s: %w", id, errdefs.ErrNotFound)
}
func (fakeContainers) Stats(id string, _ container.StatsDetail) (*container.Stats, error) {
	return nil, fmt.Errorf("container %s: %w", id, errdefs.ErrNotFound)
}
func (fakeContainers) ReopenLog(id string) error {
	return fmt.Errorf("container %s: %w", id, errdefs.ErrNotFound)
}
func (fakeContainers) UpdateResources(_ context.Context, id string, _ container.Resources) error {
	return fmt.Errorf("container %s: %w", id, errdefs.ErrNotFound)
}
func (fakeContainers) Checkpoint(_ context.Context, req container.CheckpointRequest) error {
	return fmt.Errorf("container %s: %w", req.ID, errdefs.ErrNotFound)
}

var (
	_ Containers    = fakeContainers{}
	_ Sandboxes     = fakeSandboxes{}
	_ Pods          = fakePods{}
	_ ImageStore    = fakeImages{}
	_ ImageFsUsage  = fakeImages{}
	_ ProgramProber = fakePrograms{}
	_ NetworkSource = fakeNetwork{}
)

func testOptions() Options {
	return Options{
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Programs:     fakePrograms{},
		Network:      fakeNetwork{},
		CgroupDriver: "cgroupfs",
		Handlers:     []string{"runc"},
		Images:       fakeImages{},
		Sandboxes:    fakeSandboxes{},
		Pods:         fakePods{},
		Containers:   fakeContainers{},
		Events:       &events.Broker{},
		ImageFs:      fakeImages{},
		Config:       json.RawMessage(`{"root":"/r"}`),
	}
}

// dial serves s on an in-memory listener and returns a client connection.
func dial(t *testing.T, s *grpc.Server) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestEveryRPCIsServedOrListed calls every method of the cri-api services with
// an empty request, bypassing validation, and checks that exactly the methods
// on the notYet list answer Unimplemented.
func TestEveryRPCIsServedOrListed(t *testing.T) {
	s := grpc.NewServer(grpc.ChainUnaryInterceptor(unaryStatus, unaryRecovery), grpc.ChainStreamInterceptor(streamStatus, streamRecovery))
	runtimeapi.RegisterRuntimeServiceServer(s, &runtimeService{opts: testOptions()})
	runtimeapi.RegisterImageServiceServer(s, &imageService{opts: testOptions()})
	conn := dial(t, s)

	seen := map[string]bool{}
	for _, desc := range []grpc.ServiceDesc{runtimeapi.RuntimeService_ServiceDesc, runtimeapi.ImageService_ServiceDesc} {
		for _, m := range desc.Methods {
			seen[m.MethodName] = true
			t.Run(m.MethodName, func(t *testing.T) {
				err := conn.Invoke(context.Background(), "/"+desc.ServiceName+"/"+m.MethodName, &emptypb.Empty{}, &emptypb.Empty{})
				checkServed(t, m.MethodName, err)
			})
		}
		for _, st := range desc.Streams {
			seen[st.StreamName] = true
			t.Run(st.StreamName, func(t *testing.T) {
				// A served stream may legitimately wait for events; the
				// deadline only bounds how long we look.
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				cs, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/"+desc.ServiceName+"/"+st.StreamName)
				if err == nil {
					if err = cs.SendMsg(&emptypb.Empty{}); err == nil {
						_ = cs.CloseSend()
						err = cs.RecvMsg(&emptypb.Empty{})
					}
				}
				if err == io.EOF {
					err = nil
				}
				checkServed(t, st.StreamName, err)
			})
		}
	}
	for name := range notYet {
		if !seen[name] {
			t.Errorf("notYet lists %s, which cri-api does not define", name)
		}
	}
}

func checkServed(t *testing.T, name string, err error) {
	t.Helper()
	code := status.Code(err)
	if code == codes.Internal {
		t.Fatalf("%s panicked or failed internally on an empty request: %v", name, err)
	}
	if notYet[name] && code != codes.Unimplemented {
		t.Fatalf("%s is on the notYet list but answered %v (%v); remove it from the list", name, code, err)
	}
	if !notYet[name] && code == codes.Unimplemented {
		t.Fatalf("%s answers Unimplemented but is not on the notYet list", name)
	}
}

func TestInterceptors(t *testing.T) {
	conn := dial(t, NewServer(testOptions()))
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	ctx := context.Background()

	t.Run("missing field is InvalidArgument naming it", func(t *testing.T) {
		_, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{})
		if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != "pod_sandbox_id is required: invalid argument" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("checkpoint of an unknown container is NotFound", func(t *testing.T) {
		_, err := rt.CheckpointContainer(ctx, &runtimeapi.CheckpointContainerRequest{ContainerId: "abc", Location: "/tmp/x"})
		if status.Code(err) != codes.NotFound {
			t.Fatalf("err = %v", err)
		}
		_, err = rt.CheckpointContainer(ctx, &runtimeapi.CheckpointContainerRequest{ContainerId: "abc", Location: "/tmp/x", Timeout: -1})
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("negative timeout: err = %v", err)
		}
	})
	t.Run("image request is validated", func(t *testing.T) {
		img := runtimeapi.NewImageServiceClient(conn)
		_, err := img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{})
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("panic becomes Internal and serving goes on", func(t *testing.T) {
		opts := testOptions()
		opts.Programs = panicky{}
		prt := runtimeapi.NewRuntimeServiceClient(dial(t, NewServer(opts)))
		_, err := prt.Status(ctx, &runtimeapi.StatusRequest{})
		if status.Code(err) != codes.Internal {
			t.Fatalf("err = %v; want Internal", err)
		}
		if _, err := prt.Version(ctx, &runtimeapi.VersionRequest{}); err != nil {
			t.Fatalf("Version after a panic: %v", err)
		}
	})
	t.Run("domain errors keep their code", func(t *testing.T) {
		opts := testOptions()
		opts.Network = fakeNetwork{err: errdefs.NotReady("NoNet", "no network")}
		_, err := runtimeapi.NewRuntimeServiceClient(dial(t, NewServer(opts))).Status(ctx, &runtimeapi.StatusRequest{})
		if err != nil {
			t.Fatalf("Status must report readiness in conditions, not fail: %v", err)
		}
	})
}

type panicky struct{}

func (panicky) Probe(context.Context) (oci.Programs, error) { panic("probe exploded") }
