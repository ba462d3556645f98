package e2e

import (
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// writeFile writes content to a new file in a test directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPullPicksTheHostPlatform pushes a manifest list with an image for this
// host's architecture and one for another; the pull must store the first.
func TestPullPicksTheHostPlatform(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, framework.RegistryOptions{})
	base := testImages[framework.BusyboxImage].Image
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	foreign := withArch(t, base, other)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: foreign, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: other}}},
		mutate.IndexAddendum{Add: base, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
	)
	ref, err := name.ParseReference(reg.Ref("library/multi", "1"), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	d := startDaemonFor(t, reg)
	id, err := d.Images.PullImage(ctxT(t), spec("docker.io/library/multi:1"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := base.ConfigName()
	notWant, _ := foreign.ConfigName()
	if id != want.String() || id == notWant.String() {
		t.Fatalf("pulled %s; want the %s image %s, not the %s one %s", id, runtime.GOARCH, want, other, notWant)
	}
	idxDigest, _ := idx.Digest()
	img := imageStatus(t, d, "docker.io/library/multi:1")
	if !slices.Contains(img.RepoDigests, "docker.io/library/multi@"+idxDigest.String()) {
		t.Errorf("RepoDigests %v lack the manifest list digest %s", img.RepoDigests, idxDigest)
	}
}

func withArch(t *testing.T, img v1.Image, arch string) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Architecture = arch
	out, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSignaturePolicy rejects one repository by policy.json and accepts the
// rest; the rejection reaches the client as PermissionDenied with the reason.
func TestSignaturePolicy(t *testing.T) {
	t.Parallel()
	policy := writeFile(t, "policy.json", `{
  "default": [{"type": "insecureAcceptAnything"}],
  "transports": {"docker": {"docker.io/library/busybox": [{"type": "reject"}]}}
}`)
	d := startDaemon(t, "--signature-policy", policy)
	ctx := ctxT(t)
	_, err := d.Images.PullImage(ctx, spec(framework.BusyboxImage), nil, nil)
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "rejected by policy") {
		t.Fatalf("pull of a rejected image = %v; want PermissionDenied with the policy's reason", err)
	}
	mustBeAbsent(t, d, framework.BusyboxImage)
	if _, err := d.Images.PullImage(ctx, spec(framework.HTTPDImage), nil, nil); err != nil {
		t.Fatalf("pull of an accepted image: %v", err)
	}
}

// TestRegistriesConf checks blocked registries, aliases and the order of the
// unqualified-search registries, where an unreachable first registry falls
// through to the next.
func TestRegistriesConf(t *testing.T) {
	t.Parallel()
	closed, err := framework.ClosedAddr()
	if err != nil {
		t.Fatal(err)
	}
	conf := writeFile(t, "registries.conf", `
unqualified-search-registries = ["quay.io", "docker.io"]

[aliases]
"web" = "registry.k8s.io/e2e-test/httpd"

[[registry]]
prefix = "quay.io"
location = "`+closed+`"
insecure = true

[[registry]]
prefix = "docker.io"
location = "`+registry.Addr()+`"
insecure = true

[[registry]]
prefix = "registry.k8s.io"
location = "`+registry.Addr()+`"
insecure = true

[[registry]]
prefix = "registry.k8s.io/e2e-test/blocked"
location = "`+registry.Addr()+`/blocked"
insecure = true
blocked = true
`)
	d := startDaemon(t, "--registries-conf", conf)
	ctx := ctxT(t)

	id, err := d.Images.PullImage(ctx, spec("busybox"), nil, nil)
	if err != nil || id != factsOf(t, framework.BusyboxImage).id {
		t.Fatalf("short name through an unreachable first search registry = %s, %v", id, err)
	}
	if img := imageStatus(t, d, "busybox"); img == nil || !slices.Contains(img.RepoTags, framework.BusyboxImage) {
		t.Fatalf("busybox resolved to %v; want %s", img, framework.BusyboxImage)
	}

	id, err = d.Images.PullImage(ctx, spec("web:1.0"), nil, nil)
	if err != nil || id != factsOf(t, framework.HTTPDImage).id {
		t.Fatalf("alias web:1.0 = %s, %v; want %s", id, err, framework.HTTPDImage)
	}

	_, err = d.Images.PullImage(ctx, spec("registry.k8s.io/e2e-test/blocked/x:1"), nil, nil)
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "blocked") {
		t.Fatalf("pull from a blocked registry = %v; want PermissionDenied saying it is blocked", err)
	}

	_, err = d.Images.PullImage(ctx, spec("nosuchimage"), nil, nil)
	if status.Code(err) != codes.NotFound && status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "quay.io") || !strings.Contains(err.Error(), "docker.io") {
		t.Fatalf("short name found nowhere = %v; want an error naming every registry tried", err)
	}
}

// TestPinnedImages pins by glob in the configuration file.
func TestPinnedImages(t *testing.T) {
	t.Parallel()
	d := framework.NewDaemon(t, framework.Options{Binary: binaryFor(t), Args: []string{"--registries-conf", registriesConf}})
	cfg := "[image]\npinned_images = [\"docker.io/library/busybox:*\"]\n"
	if err := os.WriteFile(filepath.Join(d.Dir, "config.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatalf("%v\n%s", err, d.Logs())
	}
	pull(t, d, framework.BusyboxImage, factsOf(t, framework.BusyboxImage))
	pull(t, d, framework.HTTPDImage, factsOf(t, framework.HTTPDImage))
	if !imageStatus(t, d, framework.BusyboxImage).Pinned {
		t.Error("busybox matches the pinned glob but is not pinned")
	}
	if imageStatus(t, d, framework.HTTPDImage).Pinned {
		t.Error("httpd is pinned although no glob matches it")
	}
}

// TestStreamImages lists through the streaming RPC and compares with the
// unary one.
func TestStreamImages(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	pull(t, d, framework.BusyboxImage, factsOf(t, framework.BusyboxImage))
	pull(t, d, framework.HTTPDImage, factsOf(t, framework.HTTPDImage))
	conn, err := grpc.NewClient("unix://"+d.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := runtimeapi.NewImageServiceClient(conn).StreamImages(ctxT(t), &runtimeapi.StreamImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var streamed []*runtimeapi.Image
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		streamed = append(streamed, resp.Images...)
	}
	got, want := ids(streamed), ids(listImages(t, d, ""))
	if len(got) != 2 || !slices.Equal(got, want) {
		t.Fatalf("StreamImages = %v; ListImages = %v", got, want)
	}
}

// TestSplitImageFilesystem keeps image layers in a separate image store:
// ImageFsInfo then reports the image and container filesystems apart, and a
// pull grows the image one.
func TestSplitImageFilesystem(t *testing.T) {
	t.Parallel()
	d := framework.NewDaemon(t, framework.Options{Binary: binaryFor(t), Args: []string{"--registries-conf", registriesConf}})
	imageStore := filepath.Join(d.Dir, "images")
	if err := os.WriteFile(filepath.Join(d.Dir, "config.toml"), []byte("[image]\nimage_store = \""+imageStore+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatalf("%v\n%s", err, d.Logs())
	}
	ctx := ctxT(t)
	before, err := d.Images.ImageFsInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(before.ImageFilesystems) != 1 || len(before.ContainerFilesystems) != 1 {
		t.Fatalf("ImageFsInfo = %v; want one image and one container filesystem", before)
	}
	pull(t, d, framework.BusyboxImage, factsOf(t, framework.BusyboxImage))
	after, err := d.Images.ImageFsInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	grew := after.ImageFilesystems[0].UsedBytes.Value - before.ImageFilesystems[0].UsedBytes.Value
	if grew < 1<<20 {
		t.Fatalf("image filesystem grew by %d bytes after pulling busybox; want at least 1 MiB", grew)
	}
	if got := after.ContainerFilesystems[0].UsedBytes.Value; got >= before.ContainerFilesystems[0].UsedBytes.Value+1<<20 {
		t.Fatalf("container filesystem grew to %d bytes: the layers did not go to the image store", got)
	}
}
