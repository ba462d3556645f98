package image

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"go.podman.io/storage"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// openTestService opens a Service on a vfs store in a temporary directory,
// with a registries.conf that searches docker.io.
func openTestService(t *testing.T) *Service {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("containers/storage needs root")
	}
	dir := t.TempDir()
	conf := dir + "/registries.conf"
	if err := os.WriteFile(conf, []byte("unqualified-search-registries = [\"docker.io\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	policy := dir + "/policy.json"
	if err := os.WriteFile(policy, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(Options{Root: dir + "/root", State: dir + "/state", StorageDriver: "vfs", RegistriesConf: conf, SignaturePolicy: policy},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func layer(t *testing.T, s *Service, parent string) string {
	t.Helper()
	l, err := s.store.CreateLayer("", parent, nil, "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l.ID
}

func TestRemoveUnusedLayers(t *testing.T) {
	s := openTestService(t)
	base := layer(t, s, "")
	top := layer(t, s, base)
	orphanBase := layer(t, s, "")
	orphanChild := layer(t, s, orphanBase)
	branch := layer(t, s, base) // shares the image's base, used by nothing
	ctrBase := layer(t, s, "")
	if _, err := s.store.CreateImage("", []string{"docker.io/library/x:1"}, top, "", nil); err != nil {
		t.Fatal(err)
	}
	ctrImg, err := s.store.CreateImage("", nil, ctrBase, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctr, err := s.store.CreateContainer("", nil, ctrImg.ID, "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The container's image goes away from the store's index of images only
	// through its container; keep both and check the container layer stays.

	n, err := s.removeUnusedLayers()
	if err != nil || n != 3 {
		t.Fatalf("removeUnusedLayers() = %d, %v; want the 3 unused layers", n, err)
	}
	for _, id := range []string{base, top, ctrBase, ctr.LayerID} {
		if _, err := s.store.Layer(id); err != nil {
			t.Errorf("used layer %s was removed: %v", id, err)
		}
	}
	for _, id := range []string{orphanBase, orphanChild, branch} {
		if _, err := s.store.Layer(id); !errors.Is(err, storage.ErrLayerUnknown) {
			t.Errorf("unused layer %s is still there: %v", id, err)
		}
	}
	if n, err := s.removeUnusedLayers(); err != nil || n != 0 {
		t.Fatalf("second pass = %d, %v; want nothing to do", n, err)
	}
}

func TestLookup(t *testing.T) {
	s := openTestService(t)
	id1 := "abc1" + strings.Repeat("0", 60)
	id2 := "abc2" + strings.Repeat("0", 60)
	if _, err := s.store.CreateImage(id1, []string{"docker.io/library/busybox:latest", "quay.io/x/y:2"}, layer(t, s, ""), "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.store.CreateImage(id2, nil, layer(t, s, ""), "", nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ref   string
		want  string
		class error
	}{
		{"busybox", id1, nil},
		{"busybox:latest", id1, nil},
		{"docker.io/library/busybox", id1, nil},
		{"quay.io/x/y:2", id1, nil},
		{"sha256:" + id1, id1, nil},
		{id2, id2, nil},
		{"abc2", id2, nil},
		{"sha256:abc1", id1, nil},
		{"abc", "", errdefs.ErrInvalidArgument}, // ambiguous prefix
		{"busybox:other", "", errdefs.ErrNotFound},
		{"quay.io/x/y", "", errdefs.ErrNotFound}, // :latest is not :2
		{"fff", "", errdefs.ErrNotFound},
		{"sha256:" + strings.Repeat("f", 64), "", errdefs.ErrNotFound},
		{"Bad::Name", "", errdefs.ErrInvalidArgument},
	} {
		img, err := s.lookup(tc.ref)
		if tc.class != nil {
			if !errors.Is(err, tc.class) {
				t.Errorf("lookup(%q) = %v, %v; want %v", tc.ref, img, err, tc.class)
			}
			continue
		}
		if err != nil || img.ID != tc.want {
			t.Errorf("lookup(%q) = %v, %v; want %s", tc.ref, img, err, tc.want)
		}
	}
}

func TestRemoveRefusesAnImageInUse(t *testing.T) {
	s := openTestService(t)
	img, err := s.store.CreateImage("", []string{"docker.io/library/busybox:latest", "docker.io/library/busybox:other"}, layer(t, s, ""), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctr, err := s.store.CreateContainer("", nil, img.ID, "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Remove(t.Context(), "busybox")
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), ctr.ID) {
		t.Fatalf("Remove of an image in use = %v; want FailedPrecondition naming container %s", err, ctr.ID)
	}
	if _, err := s.store.Image(img.ID); err != nil {
		t.Fatalf("image in use was removed: %v", err)
	}

	if err := s.store.DeleteContainer(ctr.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(t.Context(), "busybox:other"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.store.Image(img.ID); !errors.Is(err, storage.ErrImageUnknown) {
		t.Fatalf("image still there after Remove: %v", err)
	}
	if err := s.Remove(t.Context(), "busybox"); err != nil {
		t.Fatalf("Remove of a removed image = %v; want success (idempotent)", err)
	}
}

// The blob info cache is volatile: it syncs every transaction, and it is
// only a cache (the store records what finds a layer to reuse).
func TestBlobInfoCacheIsInTheState(t *testing.T) {
	s := openTestService(t)
	if !strings.HasPrefix(s.sys.BlobInfoCacheDir, s.opts.State+"/") {
		t.Errorf("blob info cache in %s; want it under the state %s", s.sys.BlobInfoCacheDir, s.opts.State)
	}
}
