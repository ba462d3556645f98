package e2e

// Containers: created in a pod from a pulled image, run by the OCI runtime
// under conmon, reported by ContainerStatus, logging in the CRI format to
// the pod's log directory. This file holds the shared helpers and the tests
// of what one container is and sees; container_lifecycle_test.go has stop,
// remove, names, listing, failed creates and isolation between containers.

import (
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// startCtrDaemon starts a daemon for container tests, with busybox pulled.
func startCtrDaemon(t *testing.T) (*framework.Daemon, imageFacts) {
	t.Helper()
	d := startPodDaemon(t)
	bb := factsOf(t, framework.BusyboxImage)
	pull(t, d, framework.BusyboxImage, bb)
	return d, bb
}

// daemonWithImage starts a daemon whose registry serves busybox (pulled)
// and, as docker.io/library/<name>:latest (also pulled), busybox with its
// config changed. It returns the daemon and that image's name.
func daemonWithImage(t *testing.T, name string, change func(*v1.Config)) (*framework.Daemon, string) {
	t.Helper()
	base := testImages[framework.BusyboxImage].Image
	cf, err := base.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	change(&cf.Config)
	img, err := mutate.ConfigFile(base, cf)
	if err != nil {
		t.Fatal(err)
	}
	reg := startRegistry(t, framework.RegistryOptions{}, framework.BusyboxImage)
	if _, err := reg.Push("library/"+name, "latest", img); err != nil {
		t.Fatal(err)
	}
	d := startDaemonFor(t, reg)
	cleanupPods(t, d)
	pull(t, d, framework.BusyboxImage, factsOf(t, framework.BusyboxImage))
	ref := "docker.io/library/" + name + ":latest"
	if _, err := d.Images.PullImage(ctxT(t), spec(ref), nil, nil); err != nil {
		t.Fatalf("PullImage(%s): %v", ref, err)
	}
	return d, ref
}

// ctrPod runs a pod whose LogDirectory is a fresh temporary directory.
func ctrPod(t *testing.T, d *framework.Daemon, name string) (string, *runtimeapi.PodSandboxConfig) {
	t.Helper()
	cfg := podConfig(name)
	cfg.LogDirectory = t.TempDir()
	return runPod(t, d, cfg), cfg
}

// shCfg is a busybox container named name that runs script with sh -c.
func shCfg(name, script string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    spec(framework.BusyboxImage),
		Command:  []string{"sh", "-c", script},
		LogPath:  name + ".log",
		Linux:    ctrLinux(),
	}
}

// ctrLinux is what the kubelet sends for a container of a pod made by
// podConfig: the pod's namespace modes (network and IPC of the pod, a PID
// namespace of the container's own).
func ctrLinux() *runtimeapi.LinuxContainerConfig {
	return &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD},
	}}
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// createCtr creates a container that must be created; it is removed when the test ends.
func createCtr(t *testing.T, d *framework.Daemon, pod string, podCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	t.Helper()
	id, err := d.Runtime.CreateContainer(ctxT(t), pod, cfg, podCfg)
	if err != nil {
		t.Fatalf("CreateContainer(%s): %v", cfg.Metadata.GetName(), err)
	}
	t.Cleanup(func() {
		if d.Pid() != 0 {
			_ = d.Runtime.RemoveContainer(ctxT(t), id)
		}
	})
	if !hex64.MatchString(id) {
		t.Fatalf("CreateContainer returned ID %q; want 64 hex digits", id)
	}
	return id
}

func startCtr(t *testing.T, d *framework.Daemon, id string) {
	t.Helper()
	if err := d.Runtime.StartContainer(ctxT(t), id); err != nil {
		t.Fatalf("StartContainer(%s): %v", id, err)
	}
}

// runCtr creates and starts a container.
func runCtr(t *testing.T, d *framework.Daemon, pod string, podCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	t.Helper()
	id := createCtr(t, d, pod, podCfg, cfg)
	startCtr(t, d, id)
	return id
}

// specArgs is process.args of the OCI runtime spec in the container's verbose info.
func specArgs(t *testing.T, d *framework.Daemon, id string) []string {
	t.Helper()
	info := d.CtrInfo(t, id)
	s := framework.InfoSpec(info)
	if s == nil {
		t.Fatalf("verbose info of %s holds no OCI runtime spec (no object with ociVersion): %v", id, info)
	}
	return framework.SpecArgs(s)
}

// runningPid is the pid of a running container, checked to be a live process.
func runningPid(t *testing.T, d *framework.Daemon, id string) int {
	t.Helper()
	pid := framework.InfoPid(d.CtrInfo(t, id))
	if pid <= 0 || !exists("/proc/"+strconv.Itoa(pid)) {
		t.Fatalf("verbose info of running container %s gives pid %d, which is not a live process", id, pid)
	}
	return pid
}

func logFile(podCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	return filepath.Join(podCfg.LogDirectory, cfg.LogPath)
}

// waitLog waits until the container's log holds exactly wantOut and wantErr.
func waitLog(t *testing.T, podCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig, wantOut, wantErr []string) []framework.LogLine {
	t.Helper()
	return framework.WaitCRILog(t, logFile(podCfg, cfg), wantOut, wantErr)
}

// storageOf is the container's entry in the daemon's containers/storage
// store, checked to have a writable layer on disk; nil when it has none.
func storageOf(t *testing.T, d *framework.Daemon, id string) *framework.StorageContainer {
	t.Helper()
	cs, err := d.StorageContainers()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.ID == id {
			if paths := d.StorageContainerPaths(id, c.Layer); c.Layer == "" || !slices.ContainsFunc(paths, exists) {
				t.Errorf("storage container %s: layer %q, none of %v on disk", id, c.Layer, paths)
			}
			return &c
		}
	}
	return nil
}

// storageIDs lists the containers in the daemon's store.
func storageIDs(t *testing.T, d *framework.Daemon) []string {
	t.Helper()
	cs, err := d.StorageContainers()
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func isNotFound(err error) bool { return status.Code(err) == codes.NotFound }

func between(ns int64, before, after time.Time) bool {
	return ns >= before.UnixNano() && ns <= after.UnixNano()
}

func TestContainerCreateStartStatus(t *testing.T) {
	t.Parallel()
	d, bb := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "status")
	cfg := shCfg("main", "echo hello; echo oops >&2; exec sleep 1000")
	cfg.Metadata.Attempt = 2
	cfg.Labels = map[string]string{"app": "web", "tier": "front"}
	cfg.Annotations = map[string]string{"e2e/note": "hi"}

	before := time.Now()
	id := createCtr(t, d, pod, podCfg, cfg)
	after := time.Now()
	st := d.CtrStatus(t, id)
	if st.Id != id || st.Metadata.GetName() != "main" || st.Metadata.GetAttempt() != 2 {
		t.Errorf("status Id/Metadata = %s %v; want %s main/2", st.Id, st.Metadata, id)
	}
	if st.State != runtimeapi.ContainerState_CONTAINER_CREATED {
		t.Errorf("state after create = %v; want CONTAINER_CREATED", st.State)
	}
	if !between(st.CreatedAt, before, after) || st.StartedAt != 0 || st.FinishedAt != 0 {
		t.Errorf("after create: CreatedAt %d StartedAt %d FinishedAt %d; want CreatedAt in [%d, %d] and the others 0",
			st.CreatedAt, st.StartedAt, st.FinishedAt, before.UnixNano(), after.UnixNano())
	}
	if st.Image.GetImage() != framework.BusyboxImage || st.ImageRef != bb.id {
		t.Errorf("Image %q ImageRef %q; want %q and the image ID %q", st.Image.GetImage(), st.ImageRef, framework.BusyboxImage, bb.id)
	}
	if st.LogPath != logFile(podCfg, cfg) {
		t.Errorf("LogPath = %q; want the full path %q", st.LogPath, logFile(podCfg, cfg))
	}
	if !sameMap(st.Labels, cfg.Labels) || !sameMap(st.Annotations, cfg.Annotations) {
		t.Errorf("Labels %v Annotations %v; want %v %v", st.Labels, st.Annotations, cfg.Labels, cfg.Annotations)
	}
	if storageOf(t, d, id) == nil {
		t.Errorf("no storage container (writable layer) for %s after create", id)
	}
	if got := specArgs(t, d, id); !slices.Equal(got, cfg.Command) {
		t.Errorf("verbose info spec process.args = %q; want %q", got, cfg.Command)
	}

	before = time.Now()
	startCtr(t, d, id)
	after = time.Now()
	st = d.CtrStatus(t, id)
	if st.State != runtimeapi.ContainerState_CONTAINER_RUNNING || !between(st.StartedAt, before, after) || st.FinishedAt != 0 {
		t.Errorf("after start: state %v StartedAt %d FinishedAt %d; want RUNNING, StartedAt in [%d, %d], FinishedAt 0",
			st.State, st.StartedAt, st.FinishedAt, before.UnixNano(), after.UnixNano())
	}
	pid := runningPid(t, d, id)
	// The process lives in the pod's pinned network, IPC and UTS namespaces.
	for _, kind := range []string{"net", "ipc", "uts"} {
		if got, want := nsInode(t, "/proc/"+strconv.Itoa(pid)+"/ns/"+kind), nsInode(t, pin(d, pod, kind)); got != want {
			t.Errorf("container's %s namespace is %d; want the pod's %d", kind, got, want)
		}
	}
	lines := waitLog(t, podCfg, cfg, []string{"hello"}, []string{"oops"})
	for _, l := range lines {
		if l.Time.Before(before.Add(-time.Second)) || l.Time.After(time.Now().Add(time.Second)) || l.Partial {
			t.Errorf("log line %+v: want a full line stamped between start and now", l)
		}
	}
	listed, err := d.Runtime.ListContainers(ctxT(t), nil)
	if err != nil {
		t.Fatalf("ListContainers: %v", err)
	}
	if len(listed) != 1 {
		t.Fatalf("ListContainers = %d containers; want 1", len(listed))
	}
	if c := listed[0]; c.Id != id || c.PodSandboxId != pod || c.State != runtimeapi.ContainerState_CONTAINER_RUNNING ||
		c.Metadata.GetName() != "main" || c.Image.GetImage() != framework.BusyboxImage || c.ImageRef != bb.id ||
		c.CreatedAt != st.CreatedAt || !sameMap(c.Labels, cfg.Labels) || !sameMap(c.Annotations, cfg.Annotations) {
		t.Errorf("listed container %+v; want %s in pod %s, RUNNING, with its metadata, image, labels and annotations", c, id, pod)
	}

	for _, tc := range []struct {
		name, script, reason string
		code                 int32
		out, err             []string
	}{
		{"ok", "echo done", "Completed", 0, []string{"done"}, nil},
		{"fail", "echo bad >&2; exit 3", "Error", 3, nil, []string{"bad"}},
	} {
		t.Run("exit "+tc.name, func(t *testing.T) {
			cfg := shCfg(tc.name, tc.script)
			id := createCtr(t, d, pod, podCfg, cfg)
			before := time.Now()
			startCtr(t, d, id)
			st := d.WaitExited(t, id)
			if st.ExitCode != tc.code || st.Reason != tc.reason {
				t.Errorf("ExitCode %d Reason %q; want %d %q", st.ExitCode, st.Reason, tc.code, tc.reason)
			}
			if st.StartedAt < st.CreatedAt || st.StartedAt < before.UnixNano() || st.FinishedAt < st.StartedAt || st.FinishedAt > time.Now().UnixNano() {
				t.Errorf("CreatedAt %d StartedAt %d FinishedAt %d; want them in order, and before now", st.CreatedAt, st.StartedAt, st.FinishedAt)
			}
			waitLog(t, podCfg, cfg, tc.out, tc.err)
		})
	}
	t.Run("unknown id", func(t *testing.T) {
		if _, err := d.Runtime.ContainerStatus(ctxT(t), strings.Repeat("ab", 32), false); !isNotFound(err) {
			t.Errorf("ContainerStatus(unknown) = %v; want NotFound", err)
		}
	})
}

// TestContainerProcess: Kubernetes rules for the process: Command replaces
// the image's entrypoint, Args its Cmd; Envs and WorkingDir are applied. It
// uses an image of its own whose Entrypoint is [echo entry] and Cmd [from-cmd].
func TestContainerProcess(t *testing.T) {
	t.Parallel()
	d, entry := daemonWithImage(t, "entry", func(c *v1.Config) {
		c.Entrypoint, c.Cmd = []string{"echo", "entry"}, []string{"from-cmd"}
	})
	pod, podCfg := ctrPod(t, d, "process")
	const imagePATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

	for _, tc := range []struct {
		name, image   string
		command, args []string
		out           string
	}{
		{"image defaults", entry, nil, nil, "entry from-cmd"},
		{"args replace cmd", entry, nil, []string{"x", "y"}, "entry x y"},
		{"command replaces entrypoint and cmd", entry, []string{"echo", "own"}, nil, "own"},
		{"command and args", entry, []string{"echo", "own"}, []string{"x"}, "own x"},
		{"args without an entrypoint", framework.BusyboxImage, nil, []string{"echo", "from-args"}, "from-args"},
		{"shell command and args", framework.BusyboxImage, []string{"sh", "-c", "echo $0-$1"}, []string{"x", "y"}, "x-y"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "-")
			cfg := &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: name}, Image: spec(tc.image),
				Command: tc.command, Args: tc.args, LogPath: name + ".log", Linux: ctrLinux()}
			id := runCtr(t, d, pod, podCfg, cfg)
			if st := d.WaitExited(t, id); st.ExitCode != 0 {
				t.Errorf("exit code %d; want 0", st.ExitCode)
			}
			waitLog(t, podCfg, cfg, []string{tc.out}, nil)
		})
	}
	t.Run("envs and working dir", func(t *testing.T) {
		cfg := shCfg("env", `echo "$FOO|$SPACED|$PATH"; pwd`)
		cfg.Envs = []*runtimeapi.KeyValue{{Key: "FOO", Value: []byte("bar")}, {Key: "SPACED", Value: []byte("a b")}}
		cfg.WorkingDir = "/etc"
		id := runCtr(t, d, pod, podCfg, cfg)
		d.WaitExited(t, id)
		waitLog(t, podCfg, cfg, []string{"bar|a b|" + imagePATH, "/etc"}, nil)
	})
	t.Run("env overrides the image's", func(t *testing.T) {
		cfg := shCfg("path", `echo "$PATH"`)
		cfg.Envs = []*runtimeapi.KeyValue{{Key: "PATH", Value: []byte("/bin:/custom")}}
		id := runCtr(t, d, pod, podCfg, cfg)
		d.WaitExited(t, id)
		waitLog(t, podCfg, cfg, []string{"/bin:/custom"}, nil)
	})
}

// TestContainerSeesPod: a container has the pod's hostname, network,
// /etc/hosts and /etc/resolv.conf.
func TestContainerSeesPod(t *testing.T) {
	t.Parallel()
	d, _ := startCtrDaemon(t)
	podCfg := podConfig("seespod")
	podCfg.Hostname = "pod-host-name"
	podCfg.LogDirectory = t.TempDir()
	podCfg.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"e2e.svc.cluster.local"}, Options: []string{"ndots:5"}}
	pod := runPod(t, d, podCfg)
	ip := podIP(t, d, pod)
	cfg := shCfg("look", "hostname; ip -o -4 addr show dev eth0; echo ---; cat /etc/hosts; echo ---; cat /etc/resolv.conf")
	id := runCtr(t, d, pod, podCfg, cfg)
	if st := d.WaitExited(t, id); st.ExitCode != 0 {
		t.Fatalf("exit code %d; want 0", st.ExitCode)
	}
	hosts := strings.Split(readTrimmed(t, filepath.Join(podDir(d, pod), "hosts")), "\n")
	resolv := strings.Split(readTrimmed(t, filepath.Join(podDir(d, pod), "resolv.conf")), "\n")
	var out []string
	eventually(10*time.Second, func() bool {
		lines, err := framework.ReadCRILog(logFile(podCfg, cfg))
		out = framework.Joined(lines, "stdout")
		return err == nil && len(out) >= 4+len(hosts)+len(resolv)
	})
	sections := [][]string{{}}
	for _, l := range out {
		if l == "---" {
			sections = append(sections, []string{})
		} else {
			sections[len(sections)-1] = append(sections[len(sections)-1], strings.TrimSpace(l))
		}
	}
	if len(sections) != 3 || len(sections[0]) != 2 {
		t.Fatalf("container output %q; want hostname, eth0's address, hosts and resolv.conf", out)
	}
	if sections[0][0] != "pod-host-name" {
		t.Errorf("hostname in the container = %q; want the pod's pod-host-name", sections[0][0])
	}
	if !strings.Contains(sections[0][1], "eth0") || !strings.Contains(sections[0][1], "inet "+ip+"/") {
		t.Errorf("eth0 in the container: %q; want the pod IP %s", sections[0][1], ip)
	}
	if !slices.Equal(sections[1], hosts) {
		t.Errorf("/etc/hosts in the container = %q; want the pod's %q", sections[1], hosts)
	}
	if !slices.Equal(sections[2], resolv) || !slices.Contains(resolv, "nameserver 10.96.0.10") {
		t.Errorf("/etc/resolv.conf in the container = %q; want the pod's %q with nameserver 10.96.0.10", sections[2], resolv)
	}
}
