package container

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/checkpoint"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/image"
)

type fakeCRIU struct{ err error }

func (f fakeCRIU) Check(context.Context) error { return f.err }

func (f *fixture) serviceWithCRIU(t *testing.T, criu CRIU, forbidden ...string) *Service {
	t.Helper()
	s, err := New(Options{Root: f.root, Images: f.images, Pods: f.pods, CRIU: criu, ArchiveForbidden: forbidden,
		Runtimes: map[string]Runtime{"runc": f.runtime}, DefaultHandler: "runc"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// layerDiff is a writable layer's diff as containers/storage writes it: a
// changed file, its directory, and a whiteout.
func layerDiff(t *testing.T) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777},
		{Name: "tmp/state", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5},
		{Name: "etc/.wh.motd", Typeflag: tar.TypeReg, Mode: 0o600},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte("hello"))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func archiveMembers(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		out[h.Name] = string(data)
	}
}

// TestCheckpointAndRestore: a running container's archive has the layout
// checkpointctl reads, and a CreateContainer naming it makes a container
// with the checkpoint's image, process and file changes, which Start
// restores instead of starting.
func TestCheckpointAndRestore(t *testing.T) {
	f := newFixture(t)
	f.images.diff = layerDiff(t)
	s := f.serviceWithCRIU(t, fakeCRIU{})
	ctx := context.Background()
	req := request("counter")
	req.Command = []string{"sh", "-c", "count"}
	req.Env = []string{"A=1"}
	req.Mounts = []Mount{{ContainerPath: "/data", HostPath: t.TempDir()}}
	req.Annotations = map[string]string{"keep": "old", "hash": "1"}
	c, err := s.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "cp.tar")
	if err := s.Checkpoint(ctx, CheckpointRequest{ID: c.ID, Location: out}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("checkpoint of a created container = %v; want FailedPrecondition", err)
	}
	if err := s.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Checkpoint(ctx, CheckpointRequest{ID: c.ID[:8], Location: out}); err != nil {
		t.Fatal(err)
	}
	m := archiveMembers(t, out)
	for _, name := range []string{"checkpoint/", "checkpoint/pages-1.img", "config.dump", "spec.dump", "rootfs-diff.tar", "deleted.files", "dump.log"} {
		if _, ok := m[name]; !ok {
			t.Errorf("archive has no %s; it has %v", name, m)
		}
	}
	if m["deleted.files"] != `["/etc/motd"]` {
		t.Errorf("deleted.files = %s", m["deleted.files"])
	}
	var cfg checkpoint.Config
	if err := json.Unmarshal([]byte(m["config.dump"]), &cfg); err != nil || cfg.ID != c.ID || cfg.RootfsImageName != "busybox" || !slices.Equal(cfg.Mounts, []string{"/data"}) {
		t.Errorf("config.dump = %+v (%v)", cfg, err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("archive mode: %v %v; want 0600 (it holds the container's memory)", fi.Mode(), err)
	}
	if entries, _ := os.ReadDir(s.checkpointWorkDir()); len(entries) != 0 {
		t.Errorf("work files left: %v", entries)
	}

	// Restore, without the mount the checkpoint had: refused.
	rreq := CreateRequest{PodID: "pod0", Name: "counter", Attempt: 1, Image: out, PIDMode: 1,
		Annotations: map[string]string{"hash": "2"}}
	if _, err := s.Create(ctx, rreq); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "/data") {
		t.Fatalf("restore without /data = %v; want InvalidArgument naming it", err)
	}
	rreq.Mounts = []Mount{{ContainerPath: "/data", HostPath: t.TempDir()}}
	r, err := s.Create(ctx, rreq)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != Created || r.Restore == nil || r.Image != "busybox" || f.runtime.created[r.ID] {
		t.Fatalf("restored container %+v; runc created: %v", r, f.runtime.created[r.ID])
	}
	if !slices.Equal(r.Spec.Process.Args, []string{"sh", "-c", "count"}) || !slices.Equal(r.Spec.Process.Env, c.Spec.Process.Env) {
		t.Errorf("restored process %v %v; want the checkpoint's %v %v", r.Spec.Process.Args, r.Spec.Process.Env, c.Spec.Process.Args, c.Spec.Process.Env)
	}
	if r.Annotations["keep"] != "old" || r.Annotations["hash"] != "2" {
		t.Errorf("annotations %v: want the checkpoint's updated by the request's", r.Annotations)
	}
	applied := f.images.applied[r.ID]
	tr := tar.NewReader(bytes.NewReader(applied))
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	if !slices.Equal(names, []string{"tmp/", "tmp/state", "etc/.wh.motd"}) {
		t.Errorf("diff applied to the new layer: %v", names)
	}
	if err := s.Start(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get(r.ID)
	if got.State != Running || got.Restore != nil || got.RestoredFrom == nil || f.runtime.restored[r.ID] == "" {
		t.Fatalf("after start: %+v, restored from %q", got, f.runtime.restored[r.ID])
	}
	if _, err := os.Stat(f.runtime.restored[r.ID]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("CRIU's images kept after the restore: %v", err)
	}
}

func TestCheckpointErrors(t *testing.T) {
	f := newFixture(t)
	state := t.TempDir()
	s := f.serviceWithCRIU(t, fakeCRIU{}, state)
	ctx := context.Background()
	c, err := s.Create(ctx, request("a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.Symlink(f.root, filepath.Join(dir, "root-link"))
	os.Mkdir(filepath.Join(dir, "sub"), 0o700)
	for _, tc := range []struct {
		name, id, location string
		want               error
	}{
		{"no location", c.ID, "", errdefs.ErrInvalidArgument},
		{"relative", c.ID, "cp.tar", errdefs.ErrInvalidArgument},
		{"unclean", c.ID, dir + "/../x/cp.tar", errdefs.ErrInvalidArgument},
		{"no directory", c.ID, dir + "/nope/cp.tar", errdefs.ErrInvalidArgument},
		{"a directory", c.ID, dir + "/sub", errdefs.ErrInvalidArgument},
		{"in root", c.ID, f.root + "/cp.tar", errdefs.ErrInvalidArgument},
		{"in root through a link", c.ID, dir + "/root-link/cp.tar", errdefs.ErrInvalidArgument},
		{"in state", c.ID, state + "/x.tar", errdefs.ErrInvalidArgument},
		{"unknown container", "feedface", dir + "/cp.tar", errdefs.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Checkpoint(ctx, CheckpointRequest{ID: tc.id, Location: tc.location}); !errors.Is(err, tc.want) {
				t.Fatalf("Checkpoint = %v; want %v", err, tc.want)
			}
		})
	}

	// CRIU refusing this node: FailedPrecondition with its reason, and
	// restores are refused the same way.
	s2 := f.serviceWithCRIU(t, fakeCRIU{err: errors.Join(errdefs.ErrFailedPrecondition, errors.New("criu check: vdso: boom"))})
	err = s2.Checkpoint(ctx, CheckpointRequest{ID: c.ID, Location: dir + "/cp.tar"})
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "vdso") {
		t.Fatalf("Checkpoint without CRIU = %v; want FailedPrecondition with CRIU's reason", err)
	}
	if _, err := os.Stat(dir + "/cp.tar"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an archive was written by a failed checkpoint: %v", err)
	}
	archive := filepath.Join(dir, "some.tar")
	os.WriteFile(archive, []byte("x"), 0o600)
	if _, err := s2.Create(ctx, CreateRequest{PodID: "pod0", Name: "r", Image: archive, PIDMode: 1}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("restore without CRIU = %v; want FailedPrecondition", err)
	}
	// With CRIU, a file that is no checkpoint archive is InvalidArgument.
	if _, err := s.Create(ctx, CreateRequest{PodID: "pod0", Name: "r", Image: archive, PIDMode: 1}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("restore from a non-archive = %v; want InvalidArgument", err)
	}
}

// TestRestoreChecksTheExpectedProcess: a restore with Checkpoint set (as
// RestorePod makes) fails on a request that describes another process
// than the checkpointed one, and succeeds on one that describes it.
func TestRestoreChecksTheExpectedProcess(t *testing.T) {
	f := newFixture(t)
	s := f.serviceWithCRIU(t, fakeCRIU{})
	ctx := context.Background()
	req := request("counter")
	req.Command = []string{"sh", "-c"}
	req.Args = []string{"count"}
	req.WorkingDir = "/work"
	req.Env = []string{"A=1"}
	uid := int64(0)
	req.Security.RunAsUser = &uid
	c, err := s.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "cp.tar")
	if err := s.Checkpoint(ctx, CheckpointRequest{ID: c.ID, Location: archive}); err != nil {
		t.Fatal(err)
	}
	other := int64(1000)
	for _, tc := range []struct {
		name   string
		change func(*CreateRequest)
		want   error
	}{
		{"another command", func(r *CreateRequest) { r.Command = []string{"sleep"} }, errdefs.ErrInvalidArgument},
		{"other args", func(r *CreateRequest) { r.Command = nil; r.Args = []string{"nope"} }, errdefs.ErrInvalidArgument},
		{"another directory", func(r *CreateRequest) { r.WorkingDir = "/" }, errdefs.ErrInvalidArgument},
		{"another value", func(r *CreateRequest) { r.Env = []string{"A=2"} }, errdefs.ErrInvalidArgument},
		{"another user", func(r *CreateRequest) { r.Security.RunAsUser = &other }, errdefs.ErrInvalidArgument},
		{"an image not pulled", func(r *CreateRequest) { r.Image = "alpine" }, errdefs.ErrNotFound},
		{"the same process", func(r *CreateRequest) {}, nil},
		{"args only, after the entrypoint", func(r *CreateRequest) { r.Command = nil; r.Name = "args-only" }, nil},
		{"nothing said", func(r *CreateRequest) {
			r.Command, r.Args, r.WorkingDir, r.Env, r.Security = nil, nil, "", nil, Security{}
			r.Image = ""
			r.Name = "bare"
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := req
			r.Attempt = 1
			r.Checkpoint = archive
			tc.change(&r)
			got, err := s.Create(ctx, r)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Create = %v; want %v", err, tc.want)
			}
			if err == nil && (got.Restore == nil || got.Image != "busybox" || !slices.Equal(got.Spec.Process.Args, []string{"sh", "-c", "count"})) {
				t.Errorf("restored container %+v", got)
			}
		})
	}
}

// TestPauseResume: Pause freezes a running container, Resume thaws it
// (and one not paused is left alone), and a restarted daemon thaws one a
// crash left paused.
func TestPauseResume(t *testing.T) {
	f := newFixture(t)
	s := f.serviceWithCRIU(t, fakeCRIU{})
	ctx := context.Background()
	c, err := s.Create(ctx, request("a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Pause(ctx, c.ID); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("Pause of a created container = %v; want FailedPrecondition", err)
	}
	if err := s.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Resume(ctx, c.ID); err != nil {
		t.Fatalf("Resume of a container not paused = %v", err)
	}
	if err := s.Pause(ctx, c.ID); err != nil || !f.runtime.paused[c.ID] {
		t.Fatalf("Pause = %v; paused %v", err, f.runtime.paused)
	}
	if err := s.Resume(ctx, c.ID); err != nil || f.runtime.paused[c.ID] {
		t.Fatalf("Resume = %v; paused %v", err, f.runtime.paused)
	}
	if err := s.Resume(ctx, "feedface"); err != nil {
		t.Fatalf("Resume of a container gone = %v", err)
	}
	// The daemon dies with the container paused.
	if err := s.Pause(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	f.serviceWithCRIU(t, fakeCRIU{})
	if f.runtime.paused[c.ID] {
		t.Error("a restarted daemon left the container paused")
	}
}

// TestRestoreFromCheckpointImage: an image whose manifest has the
// org.criu.checkpoint annotation, its layer holding an archive's files,
// restores like the archive, and the work files go.
func TestRestoreFromCheckpointImage(t *testing.T) {
	f := newFixture(t)
	f.images.diff = layerDiff(t)
	s := f.serviceWithCRIU(t, fakeCRIU{})
	ctx := context.Background()
	req := request("counter")
	req.Command = []string{"sh", "-c", "count"}
	c, err := s.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "cp.tar")
	if err := s.Checkpoint(ctx, CheckpointRequest{ID: c.ID, Location: archive}); err != nil {
		t.Fatal(err)
	}
	// The image's files: the archive unpacked, as buildah add makes them.
	a, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	f.images.dir = t.TempDir()
	if err := checkpoint.Extract(a, f.images.dir); err != nil {
		t.Fatal(err)
	}
	a.Close()

	rreq := CreateRequest{PodID: "pod0", Name: "counter", Attempt: 1, Image: "checkpoint-image", PIDMode: 1}
	if r, err := s.Create(ctx, rreq); err == nil {
		t.Fatalf("a plain image named checkpoint-image restored: %+v", r)
	}
	f.images.checkpointImage = true
	if _, err := f.serviceWithCRIU(t, fakeCRIU{err: errdefs.ErrFailedPrecondition}).Create(ctx, rreq); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("restore from a checkpoint image without CRIU = %v; want FailedPrecondition", err)
	}
	r, err := s.Create(ctx, rreq)
	if err != nil {
		t.Fatal(err)
	}
	if r.Restore == nil || r.Restore.Archive != "checkpoint-image" || r.Image != "busybox" || !slices.Equal(r.Spec.Process.Args, []string{"sh", "-c", "count"}) {
		t.Fatalf("restored container %+v (restore %+v)", r, r.Restore)
	}
	if f.images.applied[r.ID] == nil {
		t.Error("the checkpoint's file changes were not applied")
	}
	if f.images.mounts[image.ID(strings.Repeat("cd", 32))] != 0 {
		t.Error("the checkpoint image is still mounted")
	}
	if entries, _ := os.ReadDir(s.checkpointWorkDir()); len(entries) != 0 {
		t.Errorf("work files left: %v", entries)
	}
}

// TestDumpKeepsAPausedContainerPaused: a pod checkpoint's cut holds only
// if each dump leaves its paused container paused; Dump fails otherwise.
func TestDumpKeepsAPausedContainerPaused(t *testing.T) {
	f := newFixture(t)
	s := f.serviceWithCRIU(t, fakeCRIU{})
	ctx := context.Background()
	c, err := s.Create(ctx, request("a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Pause(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Dump(ctx, c.ID, t.TempDir()); err != nil || !f.runtime.paused[c.ID] {
		t.Fatalf("Dump = %v, paused %v; want done and still paused", err, f.runtime.paused[c.ID])
	}
	f.runtime.thawOnDump = true
	if err := s.Dump(ctx, c.ID, t.TempDir()); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("Dump that thawed the container = %v; want FailedPrecondition", err)
	}
}
