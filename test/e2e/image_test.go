package e2e

// Helpers shared by the ImageService tests (image_pull_test.go, image_manage_test.go). What the
// daemon reports is compared with what the test registry serves: the image ID is the config
// digest, RepoDigests carry the manifest digest.

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// imageFacts is what the registry serves for one test image.
type imageFacts struct {
	name    string   // e.g. docker.io/library/busybox:latest
	id      string   // config digest, "sha256:<hex>": the image ID the daemon must report
	digest  string   // manifest digest
	layers  []string // compressed layer digests, as the registry serves them
	sizes   []int64  // compressed layer sizes
	diffIDs []string // uncompressed layer digests, as the config lists them
	config  string   // config blob digest (same as id)
	created time.Time
	label   string // value of the framework.TestImageLabel label
	user    string // Config.User
}

func factsOf(t *testing.T, name string) imageFacts {
	t.Helper()
	ti := testImages[name]
	if ti == nil {
		t.Fatalf("no test image %s", name)
	}
	cfgName, err := ti.Image.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	cf, err := ti.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := ti.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	f := imageFacts{
		name: name, id: cfgName.String(), digest: ti.Digest, config: cfgName.String(),
		created: cf.Created.Time, label: cf.Config.Labels[framework.TestImageLabel], user: cf.Config.User,
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		size, err := l.Size()
		if err != nil {
			t.Fatal(err)
		}
		f.layers, f.sizes = append(f.layers, d.String()), append(f.sizes, size)
	}
	for _, d := range cf.RootFS.DiffIDs {
		f.diffIDs = append(f.diffIDs, d.String())
	}
	if !strings.HasPrefix(f.id, "sha256:") || len(f.id) != len("sha256:")+64 || len(f.layers) == 0 {
		t.Fatalf("%s: unexpected test image: id %q, %d layers", name, f.id, len(f.layers))
	}
	return f
}

// largestLayer is the digest of the image's biggest layer blob.
func (f imageFacts) largestLayer() string {
	i := 0
	for j, s := range f.sizes {
		if s > f.sizes[i] {
			i = j
		}
	}
	return f.layers[i]
}

// hex is the image ID without its algorithm.
func (f imageFacts) hex() string { return strings.TrimPrefix(f.id, "sha256:") }

// repoOf strips the tag and/or digest from a reference: "a.io/x/y:t" → "a.io/x/y".
func repoOf(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}

func spec(ref string) *runtimeapi.ImageSpec { return &runtimeapi.ImageSpec{Image: ref} }

// pull pulls ref without credentials and checks that the returned reference is the image ID.
func pull(t *testing.T, d *framework.Daemon, ref string, want imageFacts) {
	t.Helper()
	id, err := d.Images.PullImage(ctxT(t), spec(ref), nil, nil)
	if err != nil {
		t.Fatalf("PullImage(%q): %v", ref, err)
	}
	if id != want.id {
		t.Fatalf("PullImage(%q) = %q; want the image ID (config digest) %q", ref, id, want.id)
	}
}

// imageStatus returns the daemon's record of ref, or nil when it has none.
func imageStatus(t *testing.T, d *framework.Daemon, ref string) *runtimeapi.Image {
	t.Helper()
	resp, err := d.Images.ImageStatus(ctxT(t), spec(ref), false)
	if err != nil {
		t.Fatalf("ImageStatus(%q): %v", ref, err)
	}
	if resp == nil {
		t.Fatalf("ImageStatus(%q): nil response and nil error", ref)
	}
	return resp.Image
}

// mustStatus is imageStatus for an image that must be present and be want.
func mustStatus(t *testing.T, d *framework.Daemon, ref string, want imageFacts) *runtimeapi.Image {
	t.Helper()
	img := imageStatus(t, d, ref)
	if img == nil {
		t.Fatalf("ImageStatus(%q) = nil image; want %s (%s)", ref, want.name, want.id)
	}
	if img.Id != want.id {
		t.Fatalf("ImageStatus(%q).Id = %q; want %q (%s)", ref, img.Id, want.id, want.name)
	}
	return img
}

// mustBeAbsent checks that ImageStatus knows nothing of each ref.
func mustBeAbsent(t *testing.T, d *framework.Daemon, refs ...string) {
	t.Helper()
	for _, ref := range refs {
		if img := imageStatus(t, d, ref); img != nil {
			t.Errorf("ImageStatus(%q) = %s with tags %v; want no image", ref, img.Id, img.RepoTags)
		}
	}
}

func listImages(t *testing.T, d *framework.Daemon, filter string) []*runtimeapi.Image {
	t.Helper()
	var f *runtimeapi.ImageFilter
	if filter != "" {
		f = &runtimeapi.ImageFilter{Image: spec(filter)}
	}
	imgs, err := d.Images.ListImages(ctxT(t), f)
	if err != nil {
		t.Fatalf("ListImages(%q): %v", filter, err)
	}
	return imgs
}

// ids returns the sorted IDs of imgs.
func ids(imgs []*runtimeapi.Image) []string {
	out := make([]string, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, img.Id)
	}
	slices.Sort(out)
	return out
}

// checkImage checks one image record against the registry's facts: its ID and size, that it
// carries every tag in tags, and that its RepoDigests name the manifest digest for each of
// those repositories (and no other digest).
func checkImage(t *testing.T, img *runtimeapi.Image, want imageFacts, tags ...string) {
	t.Helper()
	if img.Id != want.id {
		t.Errorf("image Id = %q; want %q (%s)", img.Id, want.id, want.name)
		return
	}
	if img.Size == 0 {
		t.Errorf("%s: Size = 0", want.name)
	}
	if img.Pinned {
		t.Errorf("%s: Pinned = true for an ordinary pulled image", want.name)
	}
	for _, tag := range tags {
		if !slices.Contains(img.RepoTags, tag) {
			t.Errorf("%s: RepoTags = %v; want %q among them", want.name, img.RepoTags, tag)
		}
		if rd := repoOf(tag) + "@" + want.digest; !slices.Contains(img.RepoDigests, rd) {
			t.Errorf("%s: RepoDigests = %v; want %q among them", want.name, img.RepoDigests, rd)
		}
	}
	for _, rd := range img.RepoDigests {
		if !strings.HasSuffix(rd, "@"+want.digest) {
			t.Errorf("%s: RepoDigests entry %q does not name the manifest digest %s", want.name, rd, want.digest)
		}
	}
}

func usedBytes(t *testing.T, d *framework.Daemon) uint64 {
	t.Helper()
	fs, err := d.Images.ImageFsInfo(ctxT(t))
	if err != nil {
		t.Fatalf("ImageFsInfo: %v", err)
	}
	if len(fs.GetImageFilesystems()) == 0 || fs.ImageFilesystems[0].GetUsedBytes() == nil {
		t.Fatalf("ImageFsInfo reports no image filesystem usage: %v", fs)
	}
	return fs.ImageFilesystems[0].UsedBytes.Value
}

// startRegistry starts a registry of the test's own (closed when it ends) serving the named test
// images.
func startRegistry(t *testing.T, opts framework.RegistryOptions, names ...string) *framework.Registry {
	t.Helper()
	r, err := framework.StartRegistry(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	for _, n := range names {
		ti := testImages[n]
		if _, err := r.Push(ti.Repo, ti.Tag, ti.Image); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// startDaemonFor starts a daemon whose registries.conf sends docker.io and registry.k8s.io to reg
// and lets it reach reg and each of insecure over plain HTTP.
func startDaemonFor(t *testing.T, reg *framework.Registry, insecure ...string) *framework.Daemon {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "registries.conf")
	if err := reg.WriteRegistriesConf(conf, insecure...); err != nil {
		t.Fatal(err)
	}
	return startDaemon(t, "--registries-conf", conf)
}

// diskUsage maps every path under dir to the bytes allocated to it, to show what a test that
// compares ImageFsInfo figures left behind. It is only ever logged.
func diskUsage(dir string) map[string]int64 {
	out := map[string]int64{}
	_ = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if fi, err := e.Info(); err == nil {
			out[strings.TrimPrefix(p, dir)] = fi.Sys().(*syscall.Stat_t).Blocks * 512
		}
		return nil
	})
	return out
}

// usageDiff describes how two diskUsage snapshots differ, one sorted line per path.
func usageDiff(before, after map[string]int64) string {
	var lines []string
	for p, n := range after {
		if m, ok := before[p]; !ok {
			lines = append(lines, fmt.Sprintf("  + %s (%d bytes)", p, n))
		} else if m != n {
			lines = append(lines, fmt.Sprintf("  ~ %s (%d → %d bytes)", p, m, n))
		}
	}
	for p, n := range before {
		if _, ok := after[p]; !ok {
			lines = append(lines, fmt.Sprintf("  - %s (%d bytes)", p, n))
		}
	}
	if len(lines) == 0 {
		return "  (no file changed)"
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
