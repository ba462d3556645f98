package framework

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// critestTestImages builds the critest images with a stand-in helper binary.
func critestTestImages(t *testing.T) map[string]*TestImage {
	t.Helper()
	helper := filepath.Join(t.TempDir(), "imagebin")
	if err := os.WriteFile(helper, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	images := mustGet(BuildCritestImages(DefaultBusyboxPath, helper))(t)
	byName := map[string]*TestImage{}
	for _, ti := range images {
		if byName[ti.Name] != nil {
			t.Fatalf("%s built twice", ti.Name)
		}
		byName[ti.Name] = ti
	}
	return byName
}

// imageFiles returns the regular files, hard links and headers of all the image's layers, the
// upper layers' entries replacing the lower ones'.
func imageFiles(t *testing.T, img v1.Image) (map[string]string, map[string]int64) {
	t.Helper()
	files, modes := map[string]string{}, map[string]int64{}
	for _, l := range mustGet(img.Layers())(t) {
		hdrs, contents := readLayerEntries(t, l)
		for _, h := range hdrs {
			modes[h.Name] = h.Mode
			if c, ok := contents[h.Name]; ok {
				files[h.Name] = c
			} else if h.Linkname != "" {
				files[h.Name] = "link to " + h.Linkname
			}
		}
	}
	return files, modes
}

func TestBuildCritestImages(t *testing.T) {
	images := critestTestImages(t)
	const staging = "gcr.io/k8s-staging-cri-tools/"
	digest := func(name string) string {
		t.Helper()
		ti := images[name]
		if ti == nil {
			t.Fatalf("%s is not built", name)
		}
		return ti.Digest
	}

	t.Run("same and different images", func(t *testing.T) {
		if d1, d2, d3 := digest(staging+"test-image-1:latest"), digest(staging+"test-image-2:latest"), digest(staging+"test-image-3:latest"); d1 == d2 || d2 == d3 || d1 == d3 {
			t.Errorf("test-image-1/2/3 must be three images: %s %s %s", d1, d2, d3)
		}
		for _, same := range [][]string{
			{staging + "test-image-tags:1", staging + "test-image-tags:2", staging + "test-image-tags:3"},
			{staging + "test-image-tag:test", staging + "test-image-tag:all"},
			{"registry.k8s.io/pause:3.9", "k8s.gcr.io/pause:3.9"},
		} {
			for _, n := range same[1:] {
				if digest(n) != digest(same[0]) {
					t.Errorf("%s and %s must be one image", same[0], n)
				}
			}
		}
		if _, ok := images[staging+"test-image-digest:latest"]; ok {
			t.Error("test-image-digest is pulled by an upstream digest; building it only misleads")
		}
	})

	t.Run("users", func(t *testing.T) {
		for name, user := range map[string]string{
			"test-image-user-uid:latest":            "1002",
			"test-image-user-username:latest":       "www-data",
			"test-image-user-uid-group:latest":      "1003:1004",
			"test-image-user-username-group:latest": "www-data:1004",
			"test-image-predefined-group:latest":    "1000",
		} {
			cf := mustGet(images[staging+name].Image.ConfigFile())(t)
			if cf.Config.User != user {
				t.Errorf("%s: user %q, want %q", name, cf.Config.User, user)
			}
		}
		files, _ := imageFiles(t, images[staging+"test-image-predefined-group:latest"].Image)
		if !strings.Contains(files["etc/passwd"], "default-user:x:1000:1000:") ||
			!strings.Contains(files["etc/group"], "group-defined-in-image:x:50000:default-user\n") {
			t.Errorf("test-image-predefined-group: user 1000 must be in group 50000:\n%s\n%s", files["etc/passwd"], files["etc/group"])
		}
		files, _ = imageFiles(t, images["registry.k8s.io/e2e-test-images/busybox:1.29-2"].Image)
		for _, u := range []string{"www-data:x:33:", "nobody:x:65534:"} {
			if !strings.Contains(files["etc/passwd"], u) {
				t.Errorf("busybox:1.29-2: no %q in /etc/passwd", u)
			}
		}
		for _, p := range []string{"bin/pgrep", "bin/ipcs", "bin/sh", "bin/ls"} {
			if _, ok := files[p]; !ok {
				t.Errorf("busybox:1.29-2: no /%s", p)
			}
		}
	})

	t.Run("programs", func(t *testing.T) {
		_, modes := imageFiles(t, images["registry.k8s.io/e2e-test-images/nonewprivs:1.3"].Image)
		if modes["usr/local/bin/nnp"]&0o4000 == 0 {
			t.Errorf("nnp must be set-user-ID, mode %o", modes["usr/local/bin/nnp"])
		}
		for name, port := range map[string]string{
			"registry.k8s.io/e2e-test-images/nginx:1.14-2":          "NGINX_PORT=80",
			staging + "hostnet-nginx-" + runtime.GOARCH + ":latest": "NGINX_PORT=12003",
		} {
			cf := mustGet(images[name].Image.ConfigFile())(t)
			if cf.Config.Entrypoint[0] != "/usr/sbin/nginx" || !strings.Contains(strings.Join(cf.Config.Env, " "), port) {
				t.Errorf("%s: entrypoint %q, env %q", name, cf.Config.Entrypoint, cf.Config.Env)
			}
			files, _ := imageFiles(t, images[name].Image)
			if _, ok := files["usr/sbin/nginx"]; !ok {
				t.Errorf("%s: no /usr/sbin/nginx", name)
			}
		}
	})

	t.Run("reproducible", func(t *testing.T) {
		again := critestTestImages(t)
		for n, ti := range images {
			if again[n].Digest != ti.Digest {
				t.Errorf("%s: digest %s, then %s", n, ti.Digest, again[n].Digest)
			}
		}
	})
}

func TestWriteRegistriesConfRedirecting(t *testing.T) {
	r := startTestRegistry(t, RegistryOptions{})
	path := filepath.Join(t.TempDir(), "registries.conf")
	if err := r.WriteRegistriesConfRedirecting(path, CritestRegistries); err != nil {
		t.Fatal(err)
	}
	var conf registriesConf
	if _, err := toml.DecodeFile(path, &conf); err != nil {
		t.Fatal(err)
	}
	prefixes := map[string]bool{}
	for _, e := range conf.Registries {
		if e.Location != r.Addr() || !e.Insecure {
			t.Errorf("entry %+v: want location %s, insecure", e, r.Addr())
		}
		prefixes[e.Prefix] = true
	}
	for _, h := range CritestRegistries {
		if !prefixes[h] {
			t.Errorf("%s is not redirected", h)
		}
	}
}
