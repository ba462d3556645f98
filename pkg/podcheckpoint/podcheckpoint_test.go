package podcheckpoint

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/checkpoint"
	"github.com/cri-runtime/cri-runtime/pkg/container"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/sandbox"
)

const podID = "p0000000000000000000"

// fakePods has one ready pod, podID, and makes new ones on Run.
type fakePods struct {
	mu      sync.Mutex
	pods    map[string]*sandbox.Sandbox
	removed []string
}

func (f *fakePods) Get(id string) (*sandbox.Sandbox, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sb, ok := f.pods[id]
	if !ok {
		return nil, errdefs.ErrNotFound
	}
	c := *sb
	return &c, nil
}

func (f *fakePods) Run(_ context.Context, cfg sandbox.Config) (*sandbox.Sandbox, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := "new" + strings.Repeat("0", 17-len(f.pods)) + string(rune('0'+len(f.pods)))
	f.pods[id] = &sandbox.Sandbox{ID: id, Config: cfg, State: sandbox.Ready}
	return f.pods[id], nil
}

func (f *fakePods) Remove(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.pods, id)
	f.removed = append(f.removed, id)
	return nil
}

// fakeContainers knows containers by ID and logs what it is asked to do
// ("pause a", "dump a", "resume a", "create a").
type fakeContainers struct {
	mu         sync.Mutex
	root       string
	containers map[string]*container.Container
	log        []string
	dumpErr    map[string]error
	createErr  map[string]error
	created    []container.CreateRequest
}

func (f *fakeContainers) add(id, pod, name string, st container.State) {
	f.containers[id] = &container.Container{ID: id, PodID: pod, Name: name, State: st}
}

func (f *fakeContainers) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, s)
}

func (f *fakeContainers) Get(id string) (*container.Container, error) {
	c, ok := f.containers[id]
	if !ok {
		return nil, errdefs.ErrNotFound
	}
	cc := *c
	return &cc, nil
}

func (f *fakeContainers) CheckCheckpointable(_ context.Context, id string) error {
	if f.containers[id].State != container.Running {
		return errdefs.ErrFailedPrecondition
	}
	return nil
}

func (f *fakeContainers) Pause(_ context.Context, id string) error {
	f.record("pause " + f.containers[id].Name)
	return nil
}

func (f *fakeContainers) Resume(_ context.Context, id string) error {
	f.record("resume " + f.containers[id].Name)
	return nil
}

// Dump writes what a container's dump has: CRIU's images and config.dump.
func (f *fakeContainers) Dump(ctx context.Context, id, dir string) error {
	name := f.containers[id].Name
	f.record("dump " + name)
	if err := f.dumpErr[name]; err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, checkpoint.ImagesDir), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, checkpoint.ImagesDir, "pages-1.img"), []byte("memory of "+name), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, checkpoint.ConfigDumpFile), []byte(`{"id":"`+id+`","name":"`+name+`"}`), 0o600)
}

func (f *fakeContainers) Create(_ context.Context, req container.CreateRequest) (*container.Container, error) {
	f.record("create " + req.Name)
	if err := f.createErr[req.Name]; err != nil {
		return nil, err
	}
	// The archive must be the checkpointed container's.
	r, err := os.Open(req.Checkpoint)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	m, err := checkpoint.ReadMembers(r, checkpoint.ConfigDumpFile)
	if err != nil {
		return nil, err
	}
	cfg, err := checkpoint.ReadConfig(m[checkpoint.ConfigDumpFile])
	if err != nil || cfg.Name != req.Name {
		return nil, errors.New("archive of another container: " + string(m[checkpoint.ConfigDumpFile]))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created = append(f.created, req)
	id := "restored-" + req.Name
	f.containers[id] = &container.Container{ID: id, PodID: req.PodID, Name: req.Name, State: container.Created}
	return f.containers[id], nil
}

func (f *fakeContainers) CheckpointWorkDir(prefix string) (string, error) {
	if err := os.MkdirAll(filepath.Join(f.root, "checkpoints"), 0o700); err != nil {
		return "", err
	}
	return os.MkdirTemp(filepath.Join(f.root, "checkpoints"), prefix+"-")
}

func (f *fakeContainers) ArchiveForbidden() []string { return []string{f.root} }

var (
	_ Pods       = (*fakePods)(nil)
	_ Containers = (*fakeContainers)(nil)
)

// fakeGate admits into any pod (unless refuse is set) and notes how many
// container steps were done when it admitted and when it was released.
type fakeGate struct {
	ctrs              *fakeContainers
	refuse            error
	admitAt, freedAt  int
	admitted, release int
}

func (g *fakeGate) Admit(id string) (func(), error) {
	if g.refuse != nil {
		return nil, g.refuse
	}
	g.ctrs.mu.Lock()
	g.admitAt = len(g.ctrs.log)
	g.ctrs.mu.Unlock()
	g.admitted++
	return func() {
		g.ctrs.mu.Lock()
		g.freedAt = len(g.ctrs.log)
		g.ctrs.mu.Unlock()
		g.release++
	}, nil
}

var _ Gate = (*fakeGate)(nil)

type fakeCRIU struct{ err error }

func (f fakeCRIU) Check(context.Context) error { return f.err }

type fixture struct {
	pods *fakePods
	ctrs *fakeContainers
	gate *fakeGate
	svc  *Service
}

// newFixture: a ready pod with two running containers ("a", "b"), one
// exited ("done"), and a running container of another pod ("other").
func newFixture(t *testing.T, criu CRIU) *fixture {
	t.Helper()
	f := &fixture{
		pods: &fakePods{pods: map[string]*sandbox.Sandbox{podID: {ID: podID, State: sandbox.Ready,
			Config: sandbox.Config{Metadata: sandbox.Metadata{Name: "web", Namespace: "ns", UID: "u1"}, Hostname: "web"}}}},
		ctrs: &fakeContainers{root: t.TempDir(), containers: map[string]*container.Container{}},
	}
	f.ctrs.add("aaaa", podID, "a", container.Running)
	f.ctrs.add("bbbb", podID, "b", container.Running)
	f.ctrs.add("dddd", podID, "done", container.Exited)
	f.ctrs.add("eeee", "otherpod", "other", container.Running)
	f.gate = &fakeGate{ctrs: f.ctrs}
	f.svc = New(Options{Pods: f.pods, PodRemover: f.pods, Gate: f.gate, Containers: f.ctrs, CRIU: criu, DefaultHandler: "runc"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return f
}

func (f *fixture) workLeft(t *testing.T) {
	t.Helper()
	if entries, _ := os.ReadDir(filepath.Join(f.ctrs.root, "checkpoints")); len(entries) != 0 {
		t.Errorf("work files left: %v", entries)
	}
}

// TestCheckpointIsOneCut: every container is paused before any is dumped
// and resumed after the last dump; the archive holds pod.dump and each
// container's archive.
func TestCheckpointIsOneCut(t *testing.T) {
	f := newFixture(t, fakeCRIU{})
	out := t.TempDir()
	if err := f.svc.Checkpoint(context.Background(), CheckpointRequest{PodID: podID, OutputDir: out, ContainerIDs: []string{"aaaa", "bbbb"}}); err != nil {
		t.Fatal(err)
	}
	want := []string{"pause a", "pause b", "dump a", "dump b", "resume a", "resume b"}
	if !slices.Equal(f.ctrs.log, want) {
		t.Errorf("steps %v; want %v", f.ctrs.log, want)
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 1 || entries[0].Name() != checkpoint.PodArchiveFile {
		t.Fatalf("output directory holds %v; want only %s", entries, checkpoint.PodArchiveFile)
	}
	archive := filepath.Join(out, checkpoint.PodArchiveFile)
	if fi, _ := os.Stat(archive); fi.Mode().Perm() != 0o600 {
		t.Errorf("archive mode %v; want 0600", fi.Mode())
	}
	members := tarMembers(t, archive)
	pc, err := checkpoint.ReadPodConfig(members[checkpoint.PodDumpFile])
	if err != nil {
		t.Fatal(err)
	}
	if pc.ID != podID || pc.Name != "web" || pc.RuntimeHandler != "runc" || len(pc.Containers) != 2 || pc.Containers[1] != (checkpoint.PodContainer{Name: "b", ID: "bbbb"}) {
		t.Errorf("pod.dump = %+v", pc)
	}
	var cfg sandbox.Config
	if err := json.Unmarshal(pc.Config, &cfg); err != nil || cfg.Hostname != "web" {
		t.Errorf("pod.dump's config = %s (%v)", pc.Config, err)
	}
	inner := tarMembersOf(t, members["containers/aaaa.tar"])
	if string(inner["checkpoint/pages-1.img"]) != "memory of a" || inner[checkpoint.ConfigDumpFile] == nil {
		t.Errorf("container a's archive holds %v", keys(inner))
	}
	f.workLeft(t)
}

// TestCheckpointHoldsThePod: the pod is held (its stop and removal wait)
// from before the first pause until after the last resume; a pod that
// can no longer be held (it was stopped) is not checkpointed.
func TestCheckpointHoldsThePod(t *testing.T) {
	f := newFixture(t, fakeCRIU{})
	if err := f.svc.Checkpoint(context.Background(), CheckpointRequest{PodID: podID, OutputDir: t.TempDir(), ContainerIDs: []string{"aaaa", "bbbb"}}); err != nil {
		t.Fatal(err)
	}
	if f.gate.admitted != 1 || f.gate.release != 1 || f.gate.admitAt != 0 || f.gate.freedAt != len(f.ctrs.log) {
		t.Errorf("gate admitted %d times, released %d, held from step %d to %d of %v; want once, from the first to the last",
			f.gate.admitted, f.gate.release, f.gate.admitAt, f.gate.freedAt, f.ctrs.log)
	}

	f = newFixture(t, fakeCRIU{})
	f.gate.refuse = fmt.Errorf("pod sandbox %s is not ready: %w", podID, errdefs.ErrFailedPrecondition)
	out := t.TempDir()
	err := f.svc.Checkpoint(context.Background(), CheckpointRequest{PodID: podID, OutputDir: out, ContainerIDs: []string{"aaaa"}})
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("checkpoint of a pod stopped meanwhile: %v; want FailedPrecondition", err)
	}
	if len(f.ctrs.log) != 0 {
		t.Errorf("steps %v; want none", f.ctrs.log)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("output directory holds %v; want nothing", entries)
	}
	f.workLeft(t)
}

func TestCheckpointErrors(t *testing.T) {
	f := newFixture(t, fakeCRIU{})
	out := t.TempDir()
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), nil, 0o600)
	for _, tc := range []struct {
		name string
		req  CheckpointRequest
		want error
	}{
		{"relative directory", CheckpointRequest{PodID: podID, OutputDir: "cp", ContainerIDs: []string{"aaaa"}}, errdefs.ErrInvalidArgument},
		{"directory not empty", CheckpointRequest{PodID: podID, OutputDir: full, ContainerIDs: []string{"aaaa"}}, errdefs.ErrInvalidArgument},
		{"directory missing", CheckpointRequest{PodID: podID, OutputDir: out + "/nope", ContainerIDs: []string{"aaaa"}}, errdefs.ErrInvalidArgument},
		{"the runtime's own directory", CheckpointRequest{PodID: podID, OutputDir: f.ctrs.root, ContainerIDs: []string{"aaaa"}}, errdefs.ErrInvalidArgument},
		{"no containers", CheckpointRequest{PodID: podID, OutputDir: out}, errdefs.ErrInvalidArgument},
		{"unknown pod", CheckpointRequest{PodID: "nope", OutputDir: out, ContainerIDs: []string{"aaaa"}}, errdefs.ErrNotFound},
		{"unknown container", CheckpointRequest{PodID: podID, OutputDir: out, ContainerIDs: []string{"aaaa", "ffff"}}, errdefs.ErrNotFound},
		{"another pod's container", CheckpointRequest{PodID: podID, OutputDir: out, ContainerIDs: []string{"aaaa", "eeee"}}, errdefs.ErrInvalidArgument},
		{"a container twice", CheckpointRequest{PodID: podID, OutputDir: out, ContainerIDs: []string{"aaaa", "aaaa"}}, errdefs.ErrInvalidArgument},
		{"an exited container", CheckpointRequest{PodID: podID, OutputDir: out, ContainerIDs: []string{"aaaa", "dddd"}}, errdefs.ErrFailedPrecondition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := f.svc.Checkpoint(context.Background(), tc.req); !errors.Is(err, tc.want) {
				t.Fatalf("Checkpoint = %v; want %v", err, tc.want)
			}
		})
	}
	if len(f.ctrs.log) != 0 {
		t.Errorf("a refused request paused or dumped: %v", f.ctrs.log)
	}

	t.Run("pod not ready", func(t *testing.T) {
		f.pods.pods[podID].State = sandbox.NotReady
		defer func() { f.pods.pods[podID].State = sandbox.Ready }()
		if err := f.svc.Checkpoint(context.Background(), CheckpointRequest{PodID: podID, OutputDir: out, ContainerIDs: []string{"aaaa"}}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
			t.Fatalf("Checkpoint = %v; want FailedPrecondition", err)
		}
	})
	t.Run("pod sharing a PID namespace", func(t *testing.T) {
		f.pods.pods[podID].Config.PIDMode = sandbox.PIDPod
		defer func() { f.pods.pods[podID].Config.PIDMode = "" }()
		if err := f.svc.Checkpoint(context.Background(), CheckpointRequest{PodID: podID, OutputDir: out, ContainerIDs: []string{"aaaa"}}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
			t.Fatalf("Checkpoint = %v; want FailedPrecondition", err)
		}
	})

	// A dump that fails, or a deadline that passes, leaves nothing and
	// no container paused.
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		fail error
	}{
		{"dump fails", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }, errors.New("CRIU said no")},
		{"deadline passed", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.ctrs.log = nil
			f.ctrs.dumpErr = map[string]error{"b": tc.fail}
			ctx, cancel := tc.ctx()
			defer cancel()
			err := f.svc.Checkpoint(ctx, CheckpointRequest{PodID: podID, OutputDir: out, ContainerIDs: []string{"aaaa", "bbbb"}})
			if err == nil {
				t.Fatal("Checkpoint succeeded")
			}
			if !slices.Contains(f.ctrs.log, "resume a") || slices.Contains(f.ctrs.log, "pause b") && !slices.Contains(f.ctrs.log, "resume b") {
				t.Errorf("steps %v: a paused container was not resumed", f.ctrs.log)
			}
			if entries, _ := os.ReadDir(out); len(entries) != 0 {
				t.Errorf("a failed checkpoint left %v", entries)
			}
			f.workLeft(t)
		})
	}
	f.ctrs.dumpErr = nil
}

// checkpointed makes a pod checkpoint of a and b and returns its directory.
func checkpointed(t *testing.T, f *fixture) string {
	t.Helper()
	dir := t.TempDir()
	if err := f.svc.Checkpoint(context.Background(), CheckpointRequest{PodID: podID, OutputDir: dir, ContainerIDs: []string{"aaaa", "bbbb"}}); err != nil {
		t.Fatal(err)
	}
	f.ctrs.log = nil
	return dir
}

func TestRestore(t *testing.T) {
	f := newFixture(t, fakeCRIU{})
	dir := checkpointed(t, f)
	newPod := &sandbox.Config{Metadata: sandbox.Metadata{Name: "web", Namespace: "ns", UID: "u2"}, LogDirectory: "/logs2"}
	r, err := f.svc.Restore(context.Background(), RestoreRequest{CheckpointDir: dir, Pod: newPod,
		Containers: []container.CreateRequest{{Name: "b", Image: "busybox"}, {Name: "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := f.pods.Get(r.PodID)
	if err != nil || sb.Config.Metadata.UID != "u2" || sb.Config.LogDirectory != "/logs2" {
		t.Fatalf("new pod %+v (%v); want the request's configuration", sb, err)
	}
	if len(r.Containers) != 2 || r.Containers[0] != (RestoredContainer{Name: "b", ID: "restored-b"}) || r.Containers[1].Name != "a" {
		t.Errorf("restored %+v; want b and a in the request's order", r.Containers)
	}
	for _, c := range f.ctrs.created {
		if c.PodID != r.PodID || c.Checkpoint == "" {
			t.Errorf("created %+v; want it in the new pod from its archive", c)
		}
	}
	if f.ctrs.created[0].Image != "busybox" {
		t.Errorf("the request's image (what the checkpoint must match) was lost: %+v", f.ctrs.created[0])
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the restore changed the checkpoint directory: %v", entries)
	}
	f.workLeft(t)

	// Without a pod configuration: the checkpointed pod's.
	r, err = f.svc.Restore(context.Background(), RestoreRequest{CheckpointDir: dir,
		Containers: []container.CreateRequest{{Name: "a"}, {Name: "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	if sb, _ := f.pods.Get(r.PodID); sb.Config.Metadata.UID != "u1" || sb.Config.Hostname != "web" {
		t.Errorf("new pod %+v; want the checkpointed pod's configuration", sb.Config)
	}
}

func TestRestoreErrors(t *testing.T) {
	f := newFixture(t, fakeCRIU{})
	dir := checkpointed(t, f)
	both := []container.CreateRequest{{Name: "a"}, {Name: "b"}}
	for _, tc := range []struct {
		name string
		req  RestoreRequest
		want error
	}{
		{"relative directory", RestoreRequest{CheckpointDir: "cp", Containers: both}, errdefs.ErrInvalidArgument},
		{"no checkpoint in it", RestoreRequest{CheckpointDir: t.TempDir(), Containers: both}, errdefs.ErrInvalidArgument},
		{"no containers", RestoreRequest{CheckpointDir: dir}, errdefs.ErrInvalidArgument},
		{"a container missing", RestoreRequest{CheckpointDir: dir, Containers: both[:1]}, errdefs.ErrInvalidArgument},
		{"a container too many", RestoreRequest{CheckpointDir: dir, Containers: append(both, container.CreateRequest{Name: "c"})}, errdefs.ErrInvalidArgument},
		{"a name twice", RestoreRequest{CheckpointDir: dir, Containers: []container.CreateRequest{{Name: "a"}, {Name: "a"}}}, errdefs.ErrInvalidArgument},
		{"an unnamed container", RestoreRequest{CheckpointDir: dir, Containers: []container.CreateRequest{{Name: "a"}, {}}}, errdefs.ErrInvalidArgument},
		{"another handler", RestoreRequest{CheckpointDir: dir, Handler: "crun", Containers: both}, errdefs.ErrInvalidArgument},
		{"host network", RestoreRequest{CheckpointDir: dir, Pod: &sandbox.Config{HostNetwork: true}, Containers: both}, errdefs.ErrInvalidArgument},
		{"a shared PID namespace", RestoreRequest{CheckpointDir: dir, Pod: &sandbox.Config{PIDMode: sandbox.PIDPod}, Containers: both}, errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.svc.Restore(context.Background(), tc.req); !errors.Is(err, tc.want) {
				t.Fatalf("Restore = %v; want %v", err, tc.want)
			}
		})
	}
	if len(f.pods.pods) != 1 || len(f.ctrs.log) != 0 {
		t.Errorf("refused restores made pods %v or containers %v", f.pods.pods, f.ctrs.log)
	}

	t.Run("CRIU not available", func(t *testing.T) {
		f.svc.opts.CRIU = fakeCRIU{err: errdefs.ErrFailedPrecondition}
		defer func() { f.svc.opts.CRIU = fakeCRIU{} }()
		if _, err := f.svc.Restore(context.Background(), RestoreRequest{CheckpointDir: dir, Containers: both}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
			t.Fatalf("Restore = %v; want FailedPrecondition", err)
		}
	})
	t.Run("a container fails: the pod goes", func(t *testing.T) {
		f.ctrs.createErr = map[string]error{"b": errdefs.ErrInvalidArgument}
		defer func() { f.ctrs.createErr = nil }()
		_, err := f.svc.Restore(context.Background(), RestoreRequest{CheckpointDir: dir, Containers: both})
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("Restore = %v; want the container's error", err)
		}
		if len(f.pods.pods) != 1 || len(f.pods.removed) != 1 {
			t.Errorf("pods %v, removed %v: the new pod was not removed", f.pods.pods, f.pods.removed)
		}
		f.workLeft(t)
	})
}

func tarMembers(t *testing.T, path string) map[string][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return tarMembersOf(t, data)
}

func tarMembersOf(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tr := tar.NewReader(strings.NewReader(string(data)))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = b
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
