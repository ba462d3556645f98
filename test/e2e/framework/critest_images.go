package framework

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The images critest (cri-tools v1.37.0, pkg/validate and pkg/framework) pulls, rebuilt from
// the static busybox and a small static helper program (test/critest/imagebin), with exactly
// the properties its specs check. cri-tools' images/ folder and the Kubernetes e2e test images
// describe the originals.

// CritestRegistries are the public registries critest names images on. WriteRegistriesConfRedirecting
// with this list sends all of them to the test registry (docker.io too, so that nothing critest
// might name there reaches the internet).
var CritestRegistries = []string{"registry.k8s.io", "k8s.gcr.io", "gcr.io", "docker.io"}

const (
	// critestStaging is where cri-tools keeps its own test images.
	critestStaging = "gcr.io/k8s-staging-cri-tools/"
	// critestE2E is the Kubernetes e2e test images' prefix (framework.DefaultRegistryE2ETestImagesPrefix).
	critestE2E = "registry.k8s.io/e2e-test-images/"

	// CritestNginxPort is the port the nginx stand-ins listen on unless NGINX_PORT says otherwise.
	CritestNginxPort = 80
	// CritestHostNetNginxPort is the port of the hostnet-nginx image (cri-tools images/hostnet-nginx).
	CritestHostNetNginxPort = 12003
)

// busyboxPasswd and busyboxGroup are the /etc/passwd and /etc/group of the busybox images on
// Docker Hub that cri-tools' and Kubernetes' test images start from: critest names www-data
// (test-image-user-username) and nobody (RunAsUsername) in them.
const (
	busyboxPasswd = "root:x:0:0:root:/root:/bin/sh\n" +
		"daemon:x:1:1:daemon:/usr/sbin:/bin/false\n" +
		"bin:x:2:2:bin:/bin:/bin/false\n" +
		"sys:x:3:3:sys:/dev:/bin/false\n" +
		"sync:x:4:100:sync:/bin:/bin/sync\n" +
		"mail:x:8:8:mail:/var/spool/mail:/bin/false\n" +
		"www-data:x:33:33:www-data:/var/www:/bin/false\n" +
		"operator:x:37:37:Operator:/var:/bin/false\n" +
		"nobody:x:65534:65534:nobody:/home:/bin/false\n"
	busyboxGroup = "root:x:0:\ndaemon:x:1:\nbin:x:2:\nsys:x:3:\nadm:x:4:\ntty:x:5:\ndisk:x:6:\n" +
		"lp:x:7:\nmail:x:8:\nkmem:x:9:\nwheel:x:10:root\ncdrom:x:11:\ndialout:x:18:\nfloppy:x:19:\n" +
		"video:x:28:\naudio:x:29:\ntape:x:32:\nwww-data:x:33:\noperator:x:37:\nutmp:x:43:\n" +
		"plugdev:x:46:\nstaff:x:50:\nlock:x:54:\nnetdev:x:82:\nusers:x:100:\nnogroup:x:65534:\n"
)

// BuildCritestImages builds every image critest pulls, from the static busybox at busyboxPath
// and the static helper binary at helperPath (test/critest/imagebin: nginx, nnp and pause in
// one program). Names that critest treats as one image (test-image-tags:1/2/3, test-image-tag
// :test/:all, pause:3.9 on two registries) are separate entries sharing one v1.Image.
//
// What critest checks, and so what each image must be:
//   - e2e-test-images/busybox:1.29-2, the default container image: a busybox shell whose
//     /etc/passwd has nobody, with pgrep and ipcs (as all the busybox-based ones here);
//   - test-image-user-*: Config.User 1002, www-data, 1003:1004 and www-data:1004, which
//     ImageStatus reports as uid or username;
//   - test-image-predefined-group: user 1000 (default-user) in group 50000
//     (group-defined-in-image) in the image's /etc/group, Config.User 1000;
//   - test-image-1/2/3: three different images; test-image-tags:1/2/3: one image;
//     test-image-latest and test-image-tag:test/:all: busybox images whose default command runs;
//   - e2e-test-images/nginx:1.14-2: a web server on port 80 that writes /var/run/nginx.pid, is
//     found by `pidof nginx` and shows "master process" in /proc/1/cmdline when it is PID 1;
//     hostnet-nginx-<arch>: the same on port 12003;
//   - e2e-test-images/httpd:2.4.39-4: serves "/" on port 80 and logs a line naming httpd;
//   - e2e-test-images/nonewprivs:1.3: a set-user-ID root program printing "Effective uid: N";
//   - pause:3.9 on registry.k8s.io and k8s.gcr.io: one image, pulled under both names.
//
// test-image-digest is not built: critest pulls it by the digest of the upstream manifest,
// which no image built here can have.
func BuildCritestImages(busyboxPath, helperPath string) ([]*TestImage, error) {
	helper, err := os.ReadFile(helperPath)
	if err != nil {
		return nil, fmt.Errorf("read helper: %w", err)
	}
	base, err := busyboxLayer(busyboxPath)
	if err != nil {
		return nil, err
	}
	users, err := etcLayer("busybox users", busyboxPasswd, busyboxGroup)
	if err != nil {
		return nil, err
	}
	// Debian's busybox has no pgrep and no ipcs, which critest runs in the default image.
	applets, err := helperLayerLinks("pgrep and ipcs", helper, "bin/pgrep", 0o755, []string{"bin/ipcs"}, "bin")
	if err != nil {
		return nil, err
	}
	bb := []historyLayer{base, users, applets}
	shell := []string{"sh"}

	type build struct {
		names  []string // full names, all of the same image
		layers []historyLayer
		cfg    v1.Config
	}
	var builds []build
	add := func(layers []historyLayer, cfg v1.Config, names ...string) {
		builds = append(builds, build{names: names, layers: layers, cfg: cfg})
	}
	marker := func(name string) ([]historyLayer, error) {
		// cri-tools images/image-test: FROM busybox, ADD ${TEST} ${TEST} (an empty file).
		var lb layerBuilder
		lb.file(name, 0o644, nil)
		l, err := lb.layer("ADD " + name + " /" + name)
		return append(append([]historyLayer{}, bb...), l), err
	}

	add(bb, v1.Config{Cmd: shell}, critestE2E+"busybox:1.29-2")
	for _, u := range []struct{ image, user string }{
		{"test-image-user-uid", "1002"},
		{"test-image-user-username", "www-data"},
		{"test-image-user-uid-group", "1003:1004"},
		{"test-image-user-username-group", "www-data:1004"},
	} {
		add(bb, v1.Config{Cmd: shell, User: u.user}, critestStaging+u.image+":latest")
	}
	group, err := etcLayer("adduser -u 1000 default-user; addgroup -g 50000 group-defined-in-image",
		busyboxPasswd+"default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n",
		busyboxGroup+"default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n")
	if err != nil {
		return nil, err
	}
	add(append(append([]historyLayer{}, bb...), group), v1.Config{Cmd: shell, User: "1000"},
		critestStaging+"test-image-predefined-group:latest")
	for _, m := range []struct {
		file  string
		names []string
	}{
		{"test-image-1", []string{critestStaging + "test-image-1:latest"}},
		{"test-image-2", []string{critestStaging + "test-image-2:latest"}},
		{"test-image-3", []string{critestStaging + "test-image-3:latest"}},
		{"test-image-latest", []string{critestStaging + "test-image-latest:latest"}},
		{"test-image-tag", []string{critestStaging + "test-image-tag:test", critestStaging + "test-image-tag:all"}},
		{"same-image", []string{critestStaging + "test-image-tags:1", critestStaging + "test-image-tags:2", critestStaging + "test-image-tags:3"}},
	} {
		layers, err := marker(m.file)
		if err != nil {
			return nil, err
		}
		add(layers, v1.Config{Cmd: shell}, m.names...)
	}

	nginx, err := helperLayer("nginx stand-in", helper, "usr/sbin/nginx", 0o755, "usr", "usr/sbin", "run", "var", "var/run")
	if err != nil {
		return nil, err
	}
	nginxCfg := func(port int) v1.Config {
		return v1.Config{
			Entrypoint:   []string{"/usr/sbin/nginx", "-g", "daemon off;"},
			Env:          []string{fmt.Sprintf("NGINX_PORT=%d", port)},
			ExposedPorts: map[string]struct{}{fmt.Sprintf("%d/tcp", port): {}},
			StopSignal:   "SIGTERM",
		}
	}
	add(append(append([]historyLayer{}, bb...), nginx), nginxCfg(CritestNginxPort), critestE2E+"nginx:1.14-2")
	add(append(append([]historyLayer{}, bb...), nginx), nginxCfg(CritestHostNetNginxPort),
		critestStaging+"hostnet-nginx-"+runtime.GOARCH+":latest")

	www, err := wwwLayer()
	if err != nil {
		return nil, err
	}
	add(append(append([]historyLayer{}, bb...), www), v1.Config{
		// Apache's httpd logs "AH00558: httpd: Could not reliably determine ..." at start;
		// critest waits for "httpd" in the container's log.
		Entrypoint:   []string{"/bin/sh", "-c", "echo 'httpd: busybox httpd serving /www on port 80'; exec httpd -f -v -p 80 -h /www"},
		ExposedPorts: map[string]struct{}{"80/tcp": {}},
	}, critestE2E+"httpd:2.4.39-4")

	nnp, err := helperLayer("nonewprivs: nnp, set-user-ID root", helper, "usr/local/bin/nnp", 0o4755, "usr", "usr/local", "usr/local/bin")
	if err != nil {
		return nil, err
	}
	add(append(append([]historyLayer{}, bb...), nnp), v1.Config{Cmd: []string{"/usr/local/bin/nnp"}, User: "1000"},
		critestE2E+"nonewprivs:1.3")

	pause, err := helperLayer("pause", helper, "pause", 0o755)
	if err != nil {
		return nil, err
	}
	add([]historyLayer{pause}, v1.Config{Entrypoint: []string{"/pause"}, User: "65535:65535"},
		"registry.k8s.io/pause:3.9", "k8s.gcr.io/pause:3.9")

	var images []*TestImage
	for _, b := range builds {
		cfg := b.cfg
		cfg.Env = append([]string{imagePath}, cfg.Env...)
		short := b.names[0][strings.LastIndex(b.names[0], "/")+1:]
		cfg.Labels = map[string]string{TestImageLabel: "critest-" + short}
		img, err := assembleImage(b.layers, cfg)
		if err != nil {
			return nil, fmt.Errorf("build %s: %w", b.names[0], err)
		}
		d, err := img.Digest()
		if err != nil {
			return nil, fmt.Errorf("build %s: digest: %w", b.names[0], err)
		}
		for _, n := range b.names {
			repo, tag, err := splitRedirectedName(n)
			if err != nil {
				return nil, err
			}
			images = append(images, &TestImage{Name: n, Repo: repo, Tag: tag, Image: img, Digest: d.String()})
		}
	}
	return images, nil
}

// PushCritestImages builds the critest images (BuildCritestImages) and pushes them, returning
// them with Digest set to the pushed manifest digest.
func (r *Registry) PushCritestImages(busyboxPath, helperPath string) ([]*TestImage, error) {
	images, err := BuildCritestImages(busyboxPath, helperPath)
	if err != nil {
		return nil, err
	}
	for _, ti := range images {
		d, err := r.Push(ti.Repo, ti.Tag, ti.Image)
		if err != nil {
			return nil, err
		}
		ti.Digest = d
	}
	return images, nil
}

// splitRedirectedName turns "gcr.io/a/b:tag" into the path the rewritten registry serves it at
// ("a/b") and its tag.
func splitRedirectedName(name string) (repo, tag string, err error) {
	host, rest, ok := strings.Cut(name, "/")
	i := strings.LastIndex(rest, ":")
	if !ok || !strings.Contains(host, ".") || i <= 0 {
		return "", "", fmt.Errorf("image name %q: want host/path:tag", name)
	}
	return rest[:i], rest[i+1:], nil
}

// etcLayer replaces /etc/passwd and /etc/group.
func etcLayer(createdBy, passwd, group string) (historyLayer, error) {
	var lb layerBuilder
	lb.dir("etc", 0o755, 0, 0)
	lb.file("etc/passwd", 0o644, []byte(passwd))
	lb.file("etc/group", 0o644, []byte(group))
	if strings.Contains(passwd, "/home/default-user") {
		lb.dir("home", 0o755, 0, 0)
		lb.dir("home/default-user", 0o755, 1000, 1000)
	}
	return lb.layer(createdBy)
}

// helperLayer puts the helper program at path (with mode, owned by root) and creates the
// directories dirs (0755, root) before it; links are hard links to path.
func helperLayer(createdBy string, helper []byte, path string, mode int64, dirs ...string) (historyLayer, error) {
	return helperLayerLinks(createdBy, helper, path, mode, nil, dirs...)
}

func helperLayerLinks(createdBy string, helper []byte, path string, mode int64, links []string, dirs ...string) (historyLayer, error) {
	var lb layerBuilder
	for _, d := range dirs {
		lb.dir(d, 0o755, 0, 0)
	}
	lb.file(path, mode, helper)
	for _, l := range links {
		lb.link(l, path)
	}
	return lb.layer(createdBy)
}
