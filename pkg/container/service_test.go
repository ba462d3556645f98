package container

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/image"
	"github.com/cri-runtime/cri-runtime/pkg/oci"
	"github.com/cri-runtime/cri-runtime/pkg/oci/spec"
	"github.com/cri-runtime/cri-runtime/pkg/record"
	"github.com/cri-runtime/cri-runtime/pkg/sandbox"
)

// fakes: one image ("busybox"), one ready pod ("pod0…"), and a runtime
// that records what it was asked to do.
type fakeImages struct {
	mu      sync.Mutex
	diff    []byte            // what WritableLayerDiff answers
	applied map[string][]byte // ApplyWritableLayerDiff's input, by container
	layers  map[string]bool
	mounts  map[image.ID]int // image volumes mounted, by image
	dir     string           // what an image volume's mount looks like
	// checkpointImage: "checkpoint-image" is a checkpoint image.
	checkpointImage bool
	// removeGate, when set, holds RemoveWritableLayer until it is closed;
	// removeErr is what RemoveWritableLayer fails with, if set.
	removeGate chan struct{}
	removeErr  error
}

func (f *fakeImages) Status(_ context.Context, ref string) (*image.Image, error) {
	if ref == "checkpoint-image" && f.checkpointImage { // its files are f.dir's
		return &image.Image{ID: image.ID(strings.Repeat("cd", 32)), Config: &imgspecv1.Image{},
			Annotations: map[string]string{"org.criu.checkpoint.container.name": "counter"}}, nil
	}
	if ref != "busybox" && ref != "sha256:"+strings.Repeat("ab", 32) { // a name or the ID
		return nil, errdefs.ErrNotFound
	}
	cfg := &imgspecv1.Image{}
	cfg.Config.Cmd = []string{"sh"}
	return &image.Image{ID: image.ID(strings.Repeat("ab", 32)), Config: cfg}, nil
}

func (f *fakeImages) CreateWritableLayer(id, _ string, _ image.ID, _ *image.IDMappings) (*image.WritableLayer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.layers[id] = true
	return &image.WritableLayer{Rootfs: "/fake/rootfs/" + id}, nil
}

func (f *fakeImages) RemoveWritableLayer(id string) error {
	f.mu.Lock()
	gate := f.removeGate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.removeErr != nil {
		return f.removeErr
	}
	delete(f.layers, id)
	return nil
}

func (f *fakeImages) WritableLayerUsage(string) (image.Usage, error) { return image.Usage{}, nil }

func (f *fakeImages) WritableLayerDiff(string) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(f.diff)), nil
}

func (f *fakeImages) ApplyWritableLayerDiff(id string, diff io.Reader) error {
	data, err := io.ReadAll(diff)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.applied == nil {
		f.applied = map[string][]byte{}
	}
	f.applied[id] = data
	return err
}

func (f *fakeImages) MountImage(img image.ID) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mounts[img]++
	return f.dir, nil
}

func (f *fakeImages) UnmountImage(img image.ID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mounts[img] == 0 {
		return errors.New("not mounted")
	}
	f.mounts[img]--
	return nil
}

type fakePods struct{ dir string }

func (f fakePods) Get(id string) (*sandbox.Sandbox, error) {
	if id == "" || !strings.HasPrefix("pod0000000000000", id) { // an ID or a prefix, as the real one
		return nil, errdefs.ErrNotFound
	}
	return &sandbox.Sandbox{ID: "pod0000000000000", State: sandbox.Ready, Dir: f.dir, CgroupParent: "/test",
		Namespaces: map[string]string{"net": "/n", "ipc": "/i", "uts": "/u"}}, nil
}

func (f fakePods) Admit(id string) (func(), error) {
	if _, err := f.Get(id); err != nil {
		return nil, err
	}
	return func() {}, nil
}

type fakeRuntime struct {
	mu       sync.Mutex
	failWith error
	created  map[string]bool
	restored map[string]string // RestoreFrom, by container
	paused   map[string]bool
	// thawOnDump: Checkpoint thaws a paused container (what the pod
	// checkpoint must not let pass).
	thawOnDump bool
}

func (f *fakeRuntime) Create(_ context.Context, o oci.CreateOptions) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failWith != nil {
		return 0, f.failWith
	}
	f.created[o.ID] = true
	if o.RestoreFrom != "" {
		if f.restored == nil {
			f.restored = map[string]string{}
		}
		f.restored[o.ID] = o.RestoreFrom
	}
	return 42, nil
}

// Checkpoint writes what runc and CRIU would: an image file and a log.
func (f *fakeRuntime) Checkpoint(_ context.Context, id string, o oci.CheckpointOptions) error {
	if f.failWith != nil {
		return f.failWith
	}
	if f.thawOnDump {
		f.mu.Lock()
		delete(f.paused, id)
		f.mu.Unlock()
	}
	if err := os.MkdirAll(o.ImageDir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.ImageDir, "pages-1.img"), []byte("memory of "+id), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(o.WorkDir, "dump.log"), []byte("dumped"), 0o600)
}
func (f *fakeRuntime) Pause(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.paused == nil {
		f.paused = map[string]bool{}
	}
	f.paused[id] = true
	return nil
}
func (f *fakeRuntime) Resume(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.paused[id] {
		return errors.New("container not paused")
	}
	delete(f.paused, id)
	return nil
}
func (f *fakeRuntime) Delete(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.created, id)
	return nil
}
func (f *fakeRuntime) Start(context.Context, string) error                { return nil }
func (f *fakeRuntime) Kill(context.Context, string, syscall.Signal) error { return nil }
func (f *fakeRuntime) Wait(ctx context.Context, _ string) (oci.Exit, error) {
	<-ctx.Done()
	return oci.Exit{}, ctx.Err()
}
func (f *fakeRuntime) Exited(string) (oci.Exit, bool)                              { return oci.Exit{}, false }
func (f *fakeRuntime) ReopenLog(string, string) error                              { return nil }
func (f *fakeRuntime) Update(context.Context, string, *specs.LinuxResources) error { return nil }
func (f *fakeRuntime) ExecSync(context.Context, string, []string, time.Duration) (*oci.ExecResult, error) {
	return &oci.ExecResult{}, nil
}
func (f *fakeRuntime) Exec(context.Context, string, []string, oci.Streams) (int, error) {
	return 0, nil
}
func (f *fakeRuntime) State(_ context.Context, id string) (oci.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.paused[id] {
		return oci.State{Status: "paused"}, nil
	}
	return oci.State{Status: "created"}, nil
}
func (f *fakeRuntime) Attach(context.Context, string, oci.Streams, bool) error { return nil }

var (
	_ Images  = (*fakeImages)(nil)
	_ Pods    = fakePods{}
	_ Runtime = (*fakeRuntime)(nil)
)

type fixture struct {
	root    string
	images  *fakeImages
	runtime *fakeRuntime
	pods    fakePods
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	podDir := t.TempDir()
	for _, f := range []string{"hosts", "hostname", "resolv.conf"} {
		if err := os.WriteFile(filepath.Join(podDir, f), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	imgDir := t.TempDir()
	if err := os.Mkdir(filepath.Join(imgDir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	return &fixture{root: t.TempDir(), images: &fakeImages{layers: map[string]bool{}, mounts: map[image.ID]int{}, dir: imgDir}, runtime: &fakeRuntime{created: map[string]bool{}}, pods: fakePods{dir: podDir}}
}

func (f *fixture) service(t *testing.T) *Service {
	t.Helper()
	s, err := New(Options{Root: f.root, Images: f.images, Pods: f.pods,
		Runtimes: map[string]Runtime{"runc": f.runtime}, DefaultHandler: "runc"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func request(name string) CreateRequest {
	return CreateRequest{PodID: "pod0", Name: name, Image: "busybox", PIDMode: 1}
}

func TestCreateReservesTheNameAndRollsBack(t *testing.T) {
	f := newFixture(t)
	s := f.service(t)
	ctx := context.Background()

	c, err := s.Create(ctx, request("a"))
	if err != nil {
		t.Fatal(err)
	}
	// runc create is left to Start.
	if c.State != Created || c.Handler != "runc" || !f.images.layers[c.ID] || f.runtime.created[c.ID] || !c.Deferred || c.Spec == nil {
		t.Fatalf("created %+v; layer %v, runtime %v", c, f.images.layers[c.ID], f.runtime.created[c.ID])
	}
	if _, err := s.Create(ctx, request("a")); !errors.Is(err, errdefs.ErrAlreadyExists) || !strings.Contains(err.Error(), c.ID) {
		t.Fatalf("same name again = %v; want AlreadyExists naming %s", err, c.ID)
	}
	if _, err := s.Create(ctx, CreateRequest{PodID: "pod0", Name: "b", Image: "alpine"}); !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "pull it first") {
		t.Fatalf("image not pulled = %v; want NotFound saying to pull it", err)
	}

	// A failure after the layer was made (a PID namespace the pod does
	// not share) undoes the layer and the record and frees the name.
	bad := request("b")
	bad.PIDMode = NamespacePod
	if _, err := s.Create(ctx, bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("Create with a PID namespace the pod does not share = %v; want InvalidArgument", err)
	}
	if len(f.images.layers) != 1 {
		t.Fatalf("layers after a failed create: %v; want only the first container's", f.images.layers)
	}
	if entries, _ := os.ReadDir(filepath.Join(f.root, "containers")); len(entries) != 1 {
		t.Fatalf("records after a failed create: %v; want only the first container's", entries)
	}
	if _, err := s.Create(ctx, request("b")); err != nil {
		t.Fatalf("name not freed by the failed create: %v", err)
	}
}

// Start runs the runc create that Create left; when it fails the container
// stays created, and a later Start can still run it.
func TestStartRunsTheDeferredCreate(t *testing.T) {
	f := newFixture(t)
	s := f.service(t)
	ctx := context.Background()
	c, err := s.Create(ctx, request("a"))
	if err != nil {
		t.Fatal(err)
	}
	f.runtime.failWith = errors.New("runc create: boom")
	if err := s.Start(ctx, c.ID); err == nil {
		t.Fatal("Start succeeded although runc create failed")
	}
	if got, err := s.Get(c.ID); err != nil || got.State != Created || !got.Deferred || f.runtime.created[c.ID] {
		t.Fatalf("after a failed start: %+v, %v; runtime %v; want created, deferred, no runc container", got, err, f.runtime.created[c.ID])
	}
	f.runtime.failWith = nil
	if err := s.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(c.ID)
	if err != nil || got.State != Running || got.Deferred || got.Pid != 42 || !f.runtime.created[c.ID] {
		t.Fatalf("after start: %+v, %v; runtime %v; want running with runc's PID", got, err, f.runtime.created[c.ID])
	}
	// The record says so too.
	if got, _ := f.service(t).store.Get(c.ID); got.State != Running || got.Deferred {
		t.Fatalf("recorded after start: %+v", got)
	}
}

func TestStartUpUndoesAnInterruptedCreate(t *testing.T) {
	f := newFixture(t)
	s := f.service(t)
	c, err := s.Create(context.Background(), request("cut"))
	if err != nil {
		t.Fatal(err)
	}
	// As if the daemon died after runc create, before the final save.
	half := &Container{ID: c.ID, PodID: c.PodID, Name: c.Name, Handler: "runc", State: creating}
	if err := writeRecord(s, half); err != nil {
		t.Fatal(err)
	}

	s2 := f.service(t)
	if _, err := s2.Get(c.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("interrupted container is listed after start-up: %v", err)
	}
	if f.images.layers[c.ID] || f.runtime.created[c.ID] {
		t.Fatalf("interrupted container left: layer %v, runtime %v", f.images.layers[c.ID], f.runtime.created[c.ID])
	}
	if _, err := os.Stat(filepath.Dir(s2.recordPath(c.ID))); !os.IsNotExist(err) {
		t.Fatalf("record left: %v", err)
	}
	if _, err := s2.Create(context.Background(), request("cut")); err != nil {
		t.Fatalf("name of the interrupted container not free: %v", err)
	}
}

func writeRecord(s *Service, c *Container) error {
	return record.Save(s.recordPath(c.ID), c)
}

// TestImageVolumes: an image volume's image is mounted for the container,
// reported with its image, and released when the container goes, when the
// create fails, and when start-up undoes an interrupted create.
func TestImageVolumes(t *testing.T) {
	f := newFixture(t)
	s := f.service(t)
	ctx := context.Background()
	img := image.ID(strings.Repeat("ab", 32))
	withVolume := func(name, sub string) CreateRequest {
		r := request(name)
		r.ImageVolumes = []ImageVolume{{ContainerPath: "/vol", Image: "busybox", SubPath: sub}}
		return r
	}

	c, err := s.Create(ctx, withVolume("a", "etc"))
	if err != nil {
		t.Fatal(err)
	}
	if f.images.mounts[img] != 1 {
		t.Fatalf("image mounts after create: %d; want 1", f.images.mounts[img])
	}
	if len(c.Mounts) != 1 || c.Mounts[0].ImageID != img || c.Mounts[0].Image != "busybox" || c.Mounts[0].ImageSubPath != "etc" || !c.Mounts[0].Readonly {
		t.Fatalf("recorded mounts %+v; want the image volume", c.Mounts)
	}
	var bound bool
	for _, m := range c.Spec.Mounts {
		if m.Destination == "/vol" && m.Source == filepath.Join(f.images.dir, "etc") && slices.Contains(m.Options, "ro") && !slices.Contains(m.Options, "noexec") {
			bound = true
		}
	}
	if !bound {
		t.Fatalf("spec mounts %+v; want %s/etc bound read-only (and executable) at /vol", c.Spec.Mounts, f.images.dir)
	}

	// A missing sub-path, an image not pulled, a later step failing: nothing stays mounted.
	if _, err := s.Create(ctx, withVolume("b", "nope")); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("missing sub-path: %v; want InvalidArgument", err)
	}
	bad := request("c")
	bad.ImageVolumes = []ImageVolume{{ContainerPath: "/vol", Image: "alpine"}}
	if _, err := s.Create(ctx, bad); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("image volume not pulled: %v; want NotFound", err)
	}
	failing := withVolume("d", "")
	failing.PIDMode = NamespacePod // the pod shares none: fails after the mount
	if _, err := s.Create(ctx, failing); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("Create failing after the mount = %v; want InvalidArgument", err)
	}
	if f.images.mounts[img] != 1 {
		t.Fatalf("image mounts after failed creates: %d; want 1", f.images.mounts[img])
	}

	if err := s.Remove(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitRemovals(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if f.images.mounts[img] != 0 {
		t.Fatalf("image mounts after remove: %d; want 0", f.images.mounts[img])
	}

	// Interrupted after the mount: start-up releases it.
	c, err = s.Create(ctx, withVolume("e", ""))
	if err != nil {
		t.Fatal(err)
	}
	if err := writeRecord(s, &Container{ID: c.ID, PodID: c.PodID, Name: c.Name, Handler: "runc", State: creating, Mounts: c.Mounts}); err != nil {
		t.Fatal(err)
	}
	f.service(t)
	if f.images.mounts[img] != 0 {
		t.Fatalf("image mounts after start-up undid the create: %d; want 0", f.images.mounts[img])
	}
}

// The kubelet sets hugepage limits on every container: on a host whose
// hugetlb controller runc cannot use they are dropped from the spec (runc
// would fail the create), and the daemon says so once, not per container.
func TestCreateDropsLimitsOfMissingControllers(t *testing.T) {
	f := newFixture(t)
	var logs strings.Builder
	s, err := New(Options{Root: f.root, Images: f.images, Pods: f.pods,
		Runtimes: map[string]Runtime{"runc": f.runtime}, DefaultHandler: "runc",
		Controllers: spec.Controllers{"cpu": true, "memory": true, "pids": true}},
		slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		req := request(name)
		req.Resources = Resources{MemoryLimit: 64 << 20, Hugepages: []Hugepage{{PageSize: "2MB", Limit: 0}}}
		c, err := s.Create(context.Background(), req)
		if err != nil {
			t.Fatalf("Create %s: %v", name, err)
		}
		if r := c.Spec.Linux.Resources; r.HugepageLimits != nil || r.Memory == nil || *r.Memory.Limit != 64<<20 {
			t.Fatalf("resources = %+v; want the memory limit and no hugepage limits", r)
		}
	}
	if n := strings.Count(logs.String(), "controller=hugetlb"); n != 1 {
		t.Fatalf("logged the missing hugetlb controller %d times, want once:\n%s", n, logs.String())
	}
}

// A request no pod could make valid fails before anything is looked up or
// made: for a pod that does not exist too.
func TestCreateChecksTheRequestFirst(t *testing.T) {
	f := newFixture(t)
	s := f.service(t)
	for name, change := range map[string]func(*CreateRequest){
		"escaping image sub-path": func(r *CreateRequest) {
			r.ImageVolumes = []ImageVolume{{ContainerPath: "/vol", Image: "busybox", SubPath: "../etc"}}
		},
		"absolute image sub-path": func(r *CreateRequest) {
			r.ImageVolumes = []ImageVolume{{ContainerPath: "/vol", Image: "busybox", SubPath: "/etc"}}
		},
		"unknown PID mode": func(r *CreateRequest) { r.PIDMode = NamespaceMode(9) },
	} {
		t.Run(name, func(t *testing.T) {
			r := request("bad")
			r.PodID = "no-such-pod"
			change(&r)
			if _, err := s.Create(context.Background(), r); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("Create = %v; want InvalidArgument before the pod is looked up", err)
			}
		})
	}
	if len(f.images.layers) != 0 {
		t.Fatalf("layers made for refused requests: %v", f.images.layers)
	}
}

// What the request says of the process, its mounts, devices, limits and
// security reaches the container's OCI spec.
func TestCreateRequestReachesTheSpec(t *testing.T) {
	f := newFixture(t)
	s := f.service(t)
	r := request("full")
	r.Command, r.Args, r.Env, r.WorkingDir = []string{"/bin/app"}, []string{"-v"}, []string{"A=1"}, "/work"
	r.Mounts = []Mount{{ContainerPath: "/data", HostPath: t.TempDir(), Readonly: true, Propagation: PropagationHostToContainer}}
	r.Devices = []Device{{ContainerPath: "/dev/mynull", HostPath: "/dev/null", Permissions: "r"}}
	r.Resources = Resources{CPUShares: 512, Hugepages: []Hugepage{{PageSize: "2MB", Limit: 2 << 20}}}
	r.Security = Security{NoNewPrivs: true, CapDrop: []string{"ALL"}, Seccomp: Profile{Type: ProfileUnconfined},
		DefaultMaskedPaths: true, DefaultReadonlyPaths: true}
	r.Annotations = map[string]string{"k": "v"}
	c, err := s.Create(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	sp := c.Spec
	if !slices.Equal(sp.Process.Args, []string{"/bin/app", "-v"}) || !slices.Contains(sp.Process.Env, "A=1") || sp.Process.Cwd != "/work" {
		t.Errorf("process %+v", sp.Process)
	}
	if !sp.Process.NoNewPrivileges || len(sp.Process.Capabilities.Bounding) != 0 || sp.Linux.Seccomp != nil {
		t.Errorf("security: no_new_privs %v, capabilities %v, seccomp %v", sp.Process.NoNewPrivileges, sp.Process.Capabilities.Bounding, sp.Linux.Seccomp != nil)
	}
	var mounted bool
	for _, m := range sp.Mounts {
		if m.Destination == "/data" && slices.Contains(m.Options, "rslave") && slices.Contains(m.Options, "ro") {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("mounts %+v; want /data read-only and rslave", sp.Mounts)
	}
	if len(sp.Linux.Devices) != 1 || sp.Linux.Devices[0].Path != "/dev/mynull" {
		t.Errorf("devices %+v", sp.Linux.Devices)
	}
	if res := sp.Linux.Resources; res.CPU == nil || res.CPU.Shares == nil || *res.CPU.Shares != 512 || len(res.HugepageLimits) != 1 {
		t.Errorf("resources %+v", res)
	}
	if sp.Annotations["k"] != "v" {
		t.Errorf("annotations %v", sp.Annotations)
	}
	if len(c.Mounts) != 1 || c.Mounts[0].Propagation != PropagationHostToContainer || !c.Mounts[0].Readonly {
		t.Errorf("recorded mounts %+v", c.Mounts)
	}
}
