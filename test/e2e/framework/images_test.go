package framework

import (
	"archive/tar"
	"errors"
	"io"
	"maps"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// mustGet turns a (value, error) pair into a function that fails t on error: mustGet(f())(t).
func mustGet[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func startTestRegistry(t *testing.T, opts RegistryOptions) *Registry {
	t.Helper()
	r := mustGet(StartRegistry(opts))(t)
	t.Cleanup(r.Close)
	return r
}

func pullTestImage(t *testing.T, r *Registry, ti *TestImage, opts ...remote.Option) v1.Image {
	t.Helper()
	ref := mustGet(name.NewTag(r.Ref(ti.Repo, ti.Tag), name.Insecure))(t)
	img, err := remote.Image(ref, opts...)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	return img
}

// readLayerEntries reads a layer's tar stream into headers (in order) and regular file contents.
func readLayerEntries(t *testing.T, l v1.Layer) ([]*tar.Header, map[string]string) {
	t.Helper()
	rc := mustGet(l.Uncompressed())(t)
	defer rc.Close()
	var hdrs []*tar.Header
	files := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return hdrs, files
		}
		if err != nil {
			t.Fatal(err)
		}
		hdrs = append(hdrs, h)
		if h.Typeflag == tar.TypeReg {
			b := mustGet(io.ReadAll(tr))(t)
			files[h.Name] = string(b)
		}
	}
}

func findTarHeader(hdrs []*tar.Header, name string) *tar.Header {
	for _, h := range hdrs {
		if h.Name == name {
			return h
		}
	}
	return nil
}

func TestPushTestImages(t *testing.T) {
	r := startTestRegistry(t, RegistryOptions{})
	images := mustGet(r.PushTestImages())(t)
	want := []string{BusyboxImage, HTTPDImage, UIDGIDImage, NamedUserImage}
	if got := slices.Sorted(maps.Keys(images)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Fatalf("pushed images %v, want %v", got, want)
	}

	var baseDigest v1.Hash
	for _, n := range want {
		ti := images[n]
		img := pullTestImage(t, r, ti)
		d := mustGet(img.Digest())(t)
		if d.String() != ti.Digest {
			t.Errorf("%s: pulled digest %s, pushed %s", n, d, ti.Digest)
		}
		if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
			t.Errorf("%s: manifest media type %s", n, mt)
		}
		cf := mustGet(img.ConfigFile())(t)
		if cf.OS != "linux" || cf.Architecture != runtime.GOARCH || !cf.Created.Equal(imageEpoch) {
			t.Errorf("%s: platform %s/%s created %v", n, cf.OS, cf.Architecture, cf.Created)
		}
		if cf.Config.Labels[TestImageLabel] == "" || !slices.Contains(cf.Config.Env, imagePath) {
			t.Errorf("%s: labels %v env %v", n, cf.Config.Labels, cf.Config.Env)
		}
		layers := mustGet(img.Layers())(t)
		if len(cf.RootFS.DiffIDs) != len(layers) || len(cf.History) != len(layers) {
			t.Errorf("%s: %d layers, %d diff IDs, %d history entries", n, len(layers), len(cf.RootFS.DiffIDs), len(cf.History))
		}
		ld := mustGet(layers[0].Digest())(t)
		if baseDigest == (v1.Hash{}) {
			baseDigest = ld
		} else if ld != baseDigest {
			t.Errorf("%s: base layer %s differs from busybox's %s", n, ld, baseDigest)
		}

		switch n {
		case BusyboxImage:
			checkBusyboxLayer(t, layers[0])
			if !slices.Equal(cf.Config.Cmd, []string{"sh"}) || cf.Config.User != "" {
				t.Errorf("busybox: cmd %q user %q", cf.Config.Cmd, cf.Config.User)
			}
		case HTTPDImage:
			ep := []string{"/usr/sbin/httpd", "-f", "-p", "80", "-h", "/www"}
			if !slices.Equal(cf.Config.Entrypoint, ep) {
				t.Errorf("httpd: entrypoint %q", cf.Config.Entrypoint)
			}
			if _, ok := cf.Config.ExposedPorts["80/tcp"]; !ok {
				t.Errorf("httpd: exposed ports %v", cf.Config.ExposedPorts)
			}
			if _, files := readLayerEntries(t, layers[len(layers)-1]); files["www/index.html"] != HTTPDIndex {
				t.Errorf("httpd: index.html = %q", files["www/index.html"])
			}
		case UIDGIDImage:
			if cf.Config.User != "1234:5678" || len(layers) != 1 {
				t.Errorf("uidgid: user %q, %d layers", cf.Config.User, len(layers))
			}
		case NamedUserImage:
			if cf.Config.User != "app" {
				t.Errorf("appuser: user %q", cf.Config.User)
			}
			hdrs, files := readLayerEntries(t, layers[len(layers)-1])
			if !strings.Contains(files["etc/passwd"], "\napp:x:1000:1000:app:/home/app:/bin/sh\n") ||
				!strings.HasPrefix(files["etc/passwd"], "root:x:0:0:") ||
				!strings.Contains(files["etc/group"], "\napp:x:1000:\n") {
				t.Errorf("appuser: passwd %q group %q", files["etc/passwd"], files["etc/group"])
			}
			if h := findTarHeader(hdrs, "home/app/"); h == nil || h.Uid != 1000 || h.Gid != 1000 || h.Typeflag != tar.TypeDir {
				t.Errorf("appuser: home/app entry %+v", h)
			}
		}
	}
}

func checkBusyboxLayer(t *testing.T, l v1.Layer) {
	t.Helper()
	bin := mustGet(os.ReadFile(DefaultBusyboxPath))(t)
	hdrs, files := readLayerEntries(t, l)
	bb := slices.IndexFunc(hdrs, func(h *tar.Header) bool { return h.Name == "bin/busybox" })
	if bb < 0 || hdrs[bb].Typeflag != tar.TypeReg || hdrs[bb].Mode != 0o755 || files["bin/busybox"] != string(bin) {
		t.Fatalf("bin/busybox missing or wrong")
	}
	sh := slices.IndexFunc(hdrs, func(h *tar.Header) bool { return h.Name == "bin/sh" })
	if sh < bb || hdrs[sh].Typeflag != tar.TypeLink || hdrs[sh].Linkname != "bin/busybox" {
		t.Errorf("bin/sh is not a hard link to bin/busybox after it: %+v", hdrs[max(sh, 0)])
	}
	links := 0
	for i, h := range hdrs {
		if h.Typeflag == tar.TypeLink {
			links++
			if h.Linkname != "bin/busybox" || i < bb {
				t.Errorf("bad link %s -> %s", h.Name, h.Linkname)
			}
			if dir := path.Dir(h.Name) + "/"; dir != "./" && slices.IndexFunc(hdrs[:i], func(d *tar.Header) bool { return d.Name == dir }) < 0 {
				t.Errorf("%s: parent %s not created before it", h.Name, dir)
			}
		}
	}
	if links < 100 {
		t.Errorf("only %d applet links", links)
	}
	if h := findTarHeader(hdrs, "tmp/"); h == nil || h.Mode != 0o1777 {
		t.Errorf("tmp/ entry %+v", h)
	}
	if !strings.Contains(files["etc/passwd"], "nobody:x:65534:65534:") || !strings.Contains(files["etc/group"], "root:x:0:") {
		t.Errorf("passwd %q group %q", files["etc/passwd"], files["etc/group"])
	}
}

func TestBuildIsReproducible(t *testing.T) {
	a := mustGet(BuildTestImages(DefaultBusyboxPath))(t)
	b := mustGet(BuildTestImages(DefaultBusyboxPath))(t)
	for i := range a {
		if a[i].Digest == "" || a[i].Digest != b[i].Digest {
			t.Errorf("%s: digests %q and %q", a[i].Name, a[i].Digest, b[i].Digest)
		}
	}
}

func TestBlobFetches(t *testing.T) {
	r := startTestRegistry(t, RegistryOptions{})
	images := mustGet(r.PushTestImages())(t)
	ti := images[BusyboxImage]
	layers := mustGet(pullTestImage(t, r, ti).Layers())(t)
	d := mustGet(layers[0].Digest())(t)
	r.ResetCounts()
	url := "http://" + r.Addr() + "/v2/" + ti.Repo + "/blobs/" + d.String()

	resp := mustGet(http.Head(url))(t)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || r.BlobFetches(d.String()) != 0 {
		t.Fatalf("HEAD: status %d, fetches %d", resp.StatusCode, r.BlobFetches(d.String()))
	}

	for want := 1; want <= 2; want++ {
		rc := mustGet(layers[0].Compressed())(t)
		mustGet(io.Copy(io.Discard, rc))(t)
		rc.Close()
		if got := r.BlobFetches(d.String()); got != want {
			t.Fatalf("after %d GETs: BlobFetches = %d", want, got)
		}
	}

	missing := "sha256:" + strings.Repeat("0", 64)
	resp = mustGet(http.Get("http://" + r.Addr() + "/v2/" + ti.Repo + "/blobs/" + missing))(t)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || r.BlobFetches(missing) != 0 {
		t.Errorf("missing blob: status %d, fetches %d", resp.StatusCode, r.BlobFetches(missing))
	}

	r.ResetCounts()
	if got := r.BlobFetches(d.String()); got != 0 {
		t.Errorf("after ResetCounts: %d", got)
	}
}

func TestRegistryAuth(t *testing.T) {
	r := startTestRegistry(t, RegistryOptions{Username: "tester", Password: "s3cret"})
	images := mustGet(r.PushTestImages())(t)
	ti := images[BusyboxImage]
	ref := mustGet(name.NewTag(r.Ref(ti.Repo, ti.Tag), name.Insecure))(t)
	for _, auth := range []authn.Authenticator{authn.Anonymous, &authn.Basic{Username: "tester", Password: "wrong"}} {
		_, err := remote.Image(ref, remote.WithAuth(auth))
		var terr *transport.Error
		if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
			t.Errorf("pull with %T: want 401, got %v", auth, err)
		}
	}

	resp := mustGet(http.Get("http://" + r.Addr() + "/v2/"))(t)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic realm=") {
		t.Errorf("anonymous /v2/: status %d, challenge %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	img := pullTestImage(t, r, ti, remote.WithAuth(&authn.Basic{Username: "tester", Password: "s3cret"}))
	if d, err := img.Digest(); err != nil || d.String() != ti.Digest {
		t.Errorf("authenticated pull: digest %v, err %v", d, err)
	}
}

func TestWriteRegistriesConf(t *testing.T) {
	r := startTestRegistry(t, RegistryOptions{})
	path := filepath.Join(t.TempDir(), "registries.conf")
	if err := r.WriteRegistriesConf(path); err != nil {
		t.Fatal(err)
	}
	var conf struct {
		UnqualifiedSearchRegistries []string `toml:"unqualified-search-registries"`
		Registry                    []struct {
			Prefix   string `toml:"prefix"`
			Location string `toml:"location"`
			Insecure bool   `toml:"insecure"`
		} `toml:"registry"`
	}
	md := mustGet(toml.DecodeFile(path, &conf))(t)
	if u := md.Undecoded(); len(u) != 0 {
		t.Errorf("unexpected keys %v", u)
	}
	if !slices.Equal(conf.UnqualifiedSearchRegistries, []string{"docker.io"}) {
		t.Errorf("unqualified-search-registries = %v", conf.UnqualifiedSearchRegistries)
	}
	prefixes := map[string]bool{}
	for _, reg := range conf.Registry {
		if reg.Location != r.Addr() || !reg.Insecure {
			t.Errorf("registry %+v: want insecure location %s", reg, r.Addr())
		}
		prefixes[reg.Prefix] = true
	}
	for _, p := range []string{"docker.io", "registry.k8s.io", ""} {
		if !prefixes[p] {
			t.Errorf("no [[registry]] with prefix %q", p)
		}
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	r := mustGet(StartRegistry(RegistryOptions{}))(t)
	url := "http://" + r.Addr() + "/v2/"
	r.Close()
	r.Close()
	if resp, err := http.Get(url); err == nil {
		resp.Body.Close()
		t.Fatalf("registry still answers after Close: %d", resp.StatusCode)
	}
}
