// Package cri is the gRPC adapter between the kubelet and the domain
// packages: it validates requests, calls a domain service, converts the
// result, and maps errors to gRPC codes once, in an interceptor. It holds no
// business logic.
package cri

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/container"
	"github.com/cri-runtime/cri-runtime/pkg/events"
	"github.com/cri-runtime/cri-runtime/pkg/image"
	"github.com/cri-runtime/cri-runtime/pkg/podcheckpoint"
	"github.com/cri-runtime/cri-runtime/pkg/sandbox"
)

// ProgramProber reports whether the OCI runtime and monitor are usable.
type ProgramProber interface {
	Probe(ctx context.Context) (container.Programs, error)
}

// NetworkSource reports the pod network in use, or why there is none, and
// takes the node's pod CIDR from the kubelet.
type NetworkSource interface {
	Network(ctx context.Context) (*sandbox.PodNetwork, error)
	SetPodCIDR(cidrs string) error
	PodCIDR() string
}

// ImageStore is the image service as the CRI sees it.
type ImageStore interface {
	Pull(ctx context.Context, name string, auth *image.Auth) (*image.Image, error)
	List(ctx context.Context, filter string) ([]*image.Image, error)
	Status(ctx context.Context, ref string) (*image.Image, error)
	Remove(ctx context.Context, ref string) error
}

// Sandboxes is the pod sandbox service as the CRI sees it.
type Sandboxes interface {
	Run(ctx context.Context, cfg sandbox.Config) (*sandbox.Sandbox, error)
	Get(id string) (*sandbox.Sandbox, error)
	List(f sandbox.Filter) []*sandbox.Sandbox
	Stats(id string, detail container.StatsDetail) (*sandbox.Stats, error)
	UpdateResources(id string, overhead, resources *sandbox.Resources) error
}

// Pods is the pod as a whole (pod.Coordinator): the operations that span
// a pod and its containers.
type Pods interface {
	Stop(ctx context.Context, id string) error
	Remove(ctx context.Context, id string) error
}

// Containers is the container service as the CRI sees it.
type Containers interface {
	Create(ctx context.Context, req container.CreateRequest) (*container.Container, error)
	Start(ctx context.Context, id string) error
	Stop(ctx context.Context, id string, timeout time.Duration) error
	Remove(ctx context.Context, id string) error
	Get(id string) (*container.Container, error)
	List(f container.Filter) []*container.Container
	ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (*container.ExecResult, error)
	ReopenLog(id string) error
	UpdateResources(ctx context.Context, id string, r container.Resources) error
	Stats(id string, detail container.StatsDetail) (*container.Stats, error)
	Checkpoint(ctx context.Context, req container.CheckpointRequest) error
}

// CheckpointSupport reports whether checkpoint/restore works on this node
// (the daemon passes oci.CRIU), for Status.
type CheckpointSupport interface {
	Status(ctx context.Context) container.CRIUStatus
}

// PodCheckpoints checkpoints and restores whole pods (podcheckpoint.Service).
type PodCheckpoints interface {
	Checkpoint(ctx context.Context, req podcheckpoint.CheckpointRequest) error
	Restore(ctx context.Context, req podcheckpoint.RestoreRequest) (*podcheckpoint.Restored, error)
}

// EventSource hands out subscriptions to lifecycle events.
type EventSource interface {
	Subscribe() (<-chan events.Event, func())
}

// ImageFsUsage measures the filesystems of the image store.
type ImageFsUsage interface {
	FsUsage() (images, containers []image.Usage, err error)
}

// Options are the domain services and facts the adapter serves from.
type Options struct {
	Logger     *slog.Logger
	Programs   ProgramProber
	Network    NetworkSource
	Images     ImageStore
	Sandboxes  Sandboxes
	Pods       Pods // stops and removes pods with their containers
	Containers Containers
	Events     EventSource
	Streams    StreamURLs
	Metrics    Observer // may be nil
	ImageFs    ImageFsUsage
	Checkpoint CheckpointSupport // may be nil
	// PodCheckpoints serves CheckpointPod and RestorePod (nil: they fail
	// with FailedPrecondition).
	PodCheckpoints PodCheckpoints
	CgroupDriver   string // "cgroupfs" or "systemd" (the config's cgroup_driver)
	// Handlers are the runtime handler names (RuntimeClass handlers) served;
	// the empty name, the default handler, is always reported.
	Handlers []string
	// HandlerFeatures are each handler's optional features, by name; the
	// default handler's are also under "".
	HandlerFeatures map[string]container.RuntimeFeatures
	// AppArmor is the node's AppArmor, reported by verbose Status; nil on
	// nodes without it.
	AppArmor interface{ Status() map[string]any }
	// Config is the effective configuration as JSON, shown by a verbose
	// Status: the daemon encodes it once, as it does not change.
	Config json.RawMessage
	// DiskReserve is space the calls that free space may take on a full
	// disk (pkg/reserve); nil for none.
	DiskReserve DiskReserve
}

// NewServer returns a gRPC server with the CRI RuntimeService and
// ImageService registered behind the interceptors.
func NewServer(opts Options) *grpc.Server {
	s := grpc.NewServer(unaryInterceptors(opts.Logger, opts.Metrics, opts.DiskReserve), streamInterceptors(opts.Logger, opts.Metrics))
	runtimeapi.RegisterRuntimeServiceServer(s, &runtimeService{opts: opts})
	runtimeapi.RegisterImageServiceServer(s, &imageService{opts: opts})
	return s
}

// runtimeService implements runtimeapi.RuntimeServiceServer, one file per
// RPC family. Embedding the Unsafe interface (not the Unimplemented struct)
// makes a method that cri-api adds a compile error rather than a silent
// Unimplemented.
type runtimeService struct {
	runtimeapi.UnsafeRuntimeServiceServer
	opts Options
}

// imageService implements runtimeapi.ImageServiceServer.
type imageService struct {
	runtimeapi.UnsafeImageServiceServer
	opts Options
}

var (
	_ runtimeapi.RuntimeServiceServer = (*runtimeService)(nil)
	_ runtimeapi.ImageServiceServer   = (*imageService)(nil)
)
