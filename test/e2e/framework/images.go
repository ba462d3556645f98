package framework

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"runtime"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Names of the images the harness serves. Tests refer to images by these names; the
// registries.conf written by WriteRegistriesConf sends them to the test registry.
const (
	// BusyboxImage is a plain busybox: every applet linked to /bin/busybox, Cmd ["sh"].
	BusyboxImage = "docker.io/library/busybox:latest"
	// HTTPDImage runs busybox httpd on port 80, serving HTTPDIndex as /index.html.
	HTTPDImage = "registry.k8s.io/e2e-test/httpd:1.0"
	// UIDGIDImage is busybox with Config.User set to UIDGIDImageUser.
	UIDGIDImage = "docker.io/library/busybox-uidgid:latest"
	// NamedUserImage is busybox with an "app" user (NamedUserUID:NamedUserGID) as Config.User.
	NamedUserImage = "docker.io/library/busybox-appuser:latest"
)

const (
	// DefaultBusyboxPath is the static busybox PushTestImages builds from.
	DefaultBusyboxPath = "/bin/busybox"
	// HTTPDIndex is the content of /www/index.html in HTTPDImage.
	HTTPDIndex = "hello from cri-runtime e2e\n"
	// UIDGIDImageUser is the Config.User of UIDGIDImage.
	UIDGIDImageUser = "1234:5678"
	// NamedUser is the Config.User of NamedUserImage; it maps to NamedUserUID/NamedUserGID.
	NamedUser    = "app"
	NamedUserUID = 1000
	NamedUserGID = 1000
	// TestImageLabel is set on every test image's config to the image's short name.
	TestImageLabel = "io.cri-runtime.test"
	// imagePath is the PATH every test image's config sets.
	imagePath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// imageEpoch is used for every timestamp in the images so that their digests are reproducible.
var imageEpoch = time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)

// TestImage describes one image the harness builds.
type TestImage struct {
	Name   string // the ordinary name tests use, e.g. "docker.io/library/busybox:latest"
	Repo   string // the path in the test registry, e.g. "library/busybox"
	Tag    string
	Image  v1.Image
	Digest string // manifest digest (known after building; confirmed by PushTestImages)
}

// BuildTestImages builds the standard images from the static busybox at busyboxPath.
// The busybox layer is built once and shared by all images.
func BuildTestImages(busyboxPath string) ([]*TestImage, error) {
	base, err := busyboxLayer(busyboxPath)
	if err != nil {
		return nil, err
	}
	www, err := wwwLayer()
	if err != nil {
		return nil, err
	}
	appUser, err := appUserLayer()
	if err != nil {
		return nil, err
	}
	shell := []string{"sh"}
	specs := []struct {
		name, repo, tag, short string
		extra                  []historyLayer
		cfg                    v1.Config
	}{
		{BusyboxImage, "library/busybox", "latest", "busybox", nil,
			v1.Config{Cmd: shell}},
		{HTTPDImage, "e2e-test/httpd", "1.0", "httpd", []historyLayer{www},
			v1.Config{
				Entrypoint:   []string{"/usr/sbin/httpd", "-f", "-p", "80", "-h", "/www"},
				ExposedPorts: map[string]struct{}{"80/tcp": {}},
			}},
		{UIDGIDImage, "library/busybox-uidgid", "latest", "uidgid", nil,
			v1.Config{User: UIDGIDImageUser, Cmd: shell}},
		{NamedUserImage, "library/busybox-appuser", "latest", "appuser", []historyLayer{appUser},
			v1.Config{User: NamedUser, Cmd: shell}},
	}
	images := make([]*TestImage, 0, len(specs))
	for _, s := range specs {
		s.cfg.Env = []string{imagePath}
		s.cfg.Labels = map[string]string{TestImageLabel: s.short}
		img, err := assembleImage(append([]historyLayer{base}, s.extra...), s.cfg)
		if err != nil {
			return nil, fmt.Errorf("build %s: %w", s.name, err)
		}
		d, err := img.Digest()
		if err != nil {
			return nil, fmt.Errorf("build %s: digest: %w", s.name, err)
		}
		images = append(images, &TestImage{
			Name: s.name, Repo: s.repo, Tag: s.tag, Image: img, Digest: d.String(),
		})
	}
	return images, nil
}

// PushTestImages builds the standard images from DefaultBusyboxPath, pushes them all and
// returns them keyed by Name, with Digest set to the pushed manifest digest.
func (r *Registry) PushTestImages() (map[string]*TestImage, error) {
	images, err := BuildTestImages(DefaultBusyboxPath)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*TestImage, len(images))
	for _, ti := range images {
		d, err := r.Push(ti.Repo, ti.Tag, ti.Image)
		if err != nil {
			return nil, err
		}
		ti.Digest = d
		byName[ti.Name] = ti
	}
	return byName, nil
}

// historyLayer is a layer together with the history entry describing it.
type historyLayer struct {
	layer     v1.Layer
	createdBy string
}

// assembleImage stacks layers into a single-platform OCI image with a complete config.
func assembleImage(layers []historyLayer, cfg v1.Config) (v1.Image, error) {
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	adds := make([]mutate.Addendum, 0, len(layers))
	for _, l := range layers {
		adds = append(adds, mutate.Addendum{
			Layer:     l.layer,
			MediaType: types.OCILayer,
			History:   v1.History{Created: v1.Time{Time: imageEpoch}, CreatedBy: l.createdBy},
		})
	}
	img, err := mutate.Append(base, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture = runtime.GOARCH
	cf.OS = "linux"
	cf.Created = v1.Time{Time: imageEpoch}
	cf.Config = cfg
	return mutate.ConfigFile(img, cf)
}

const (
	basePasswd = "root:x:0:0:root:/root:/bin/sh\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	baseGroup = "root:x:0:\n" +
		"nobody:x:65534:\n"
)

// busyboxLayer builds the layer holding busybox, its applet links and a minimal /etc.
func busyboxLayer(busyboxPath string) (historyLayer, error) {
	bin, err := os.ReadFile(busyboxPath)
	if err != nil {
		return historyLayer{}, fmt.Errorf("read busybox: %w", err)
	}
	out, err := exec.Command(busyboxPath, "--list-full").Output()
	if err != nil {
		return historyLayer{}, fmt.Errorf("%s --list-full: %w", busyboxPath, err)
	}
	const target = "bin/busybox"
	var applets []string
	dirs := map[string]bool{"bin": true}
	for _, line := range strings.Split(string(out), "\n") {
		p := strings.TrimSpace(line)
		if p == "" || p == target {
			continue
		}
		if path.IsAbs(p) || path.Clean(p) != p || strings.HasPrefix(p, "../") {
			return historyLayer{}, fmt.Errorf("%s --list-full: unexpected applet path %q", busyboxPath, p)
		}
		applets = append(applets, p)
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	if len(applets) == 0 {
		return historyLayer{}, fmt.Errorf("%s --list-full listed no applets", busyboxPath)
	}
	slices.Sort(applets)
	applets = slices.Compact(applets)

	var lb layerBuilder
	for _, d := range []string{"dev", "etc", "proc", "sys", "var"} {
		dirs[d] = true
	}
	for _, d := range slices.Sorted(maps.Keys(dirs)) {
		lb.dir(d, 0o755, 0, 0)
	}
	lb.dir("root", 0o700, 0, 0)
	lb.dir("tmp", 0o1777, 0, 0)
	lb.file(target, 0o755, bin)
	for _, a := range applets {
		lb.link(a, target)
	}
	lb.file("etc/passwd", 0o644, []byte(basePasswd))
	lb.file("etc/group", 0o644, []byte(baseGroup))
	return lb.layer(fmt.Sprintf("busybox with %d applets", len(applets)))
}

// wwwLayer holds the document root of the httpd image.
func wwwLayer() (historyLayer, error) {
	var lb layerBuilder
	lb.dir("www", 0o755, 0, 0)
	lb.file("www/index.html", 0o644, []byte(HTTPDIndex))
	return lb.layer("httpd document root /www")
}

// appUserLayer adds the "app" user and group and its home directory.
func appUserLayer() (historyLayer, error) {
	var lb layerBuilder
	lb.dir("etc", 0o755, 0, 0)
	lb.file("etc/passwd", 0o644, []byte(basePasswd+
		fmt.Sprintf("%s:x:%d:%d:%s:/home/%s:/bin/sh\n", NamedUser, NamedUserUID, NamedUserGID, NamedUser, NamedUser)))
	lb.file("etc/group", 0o644, []byte(baseGroup+fmt.Sprintf("%s:x:%d:\n", NamedUser, NamedUserGID)))
	lb.dir("home", 0o755, 0, 0)
	lb.dir("home/"+NamedUser, 0o755, NamedUserUID, NamedUserGID)
	return lb.layer("user " + NamedUser)
}

// layerBuilder accumulates tar entries in order; all timestamps are imageEpoch.
type layerBuilder struct {
	entries []layerEntry
}

type layerEntry struct {
	hdr  tar.Header
	body []byte
}

func (b *layerBuilder) add(hdr tar.Header, body []byte) {
	hdr.ModTime = imageEpoch
	b.entries = append(b.entries, layerEntry{hdr: hdr, body: body})
}

func (b *layerBuilder) dir(name string, mode int64, uid, gid int) {
	b.add(tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: gid}, nil)
}

func (b *layerBuilder) file(name string, mode int64, body []byte) {
	b.add(tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body))}, body)
}

func (b *layerBuilder) link(name, target string) {
	b.add(tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o755}, nil)
}

// layer serialises the entries as a gzip-compressed tar layer. The compression is done here,
// once, so the layer's digest is fixed and every image that uses it shares the same blob.
func (b *layerBuilder) layer(createdBy string) (historyLayer, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range b.entries {
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return historyLayer{}, fmt.Errorf("layer %q: %s: %w", createdBy, e.hdr.Name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			return historyLayer{}, fmt.Errorf("layer %q: %s: %w", createdBy, e.hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return historyLayer{}, err
	}
	if err := zw.Close(); err != nil {
		return historyLayer{}, err
	}
	blob := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(blob)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return historyLayer{}, fmt.Errorf("layer %q: %w", createdBy, err)
	}
	return historyLayer{layer: l, createdBy: createdBy}, nil
}
