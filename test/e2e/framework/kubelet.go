package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// KubeletNodeName is the node name every test kubelet runs as: a static
// pod "web" appears in its /pods as "web-" + KubeletNodeName.
const KubeletNodeName = "crirt-node"

// KubeletBinary is the kubelet the tests run: $KUBELET_BINARY when set,
// else bin/kubelet of the repository (make kubelet builds it); "" when
// there is none.
func KubeletBinary() string {
	if p := os.Getenv("KUBELET_BINARY"); p != "" {
		if abs, err := filepath.Abs(p); err == nil {
			if _, err := os.Stat(abs); err == nil {
				return abs
			}
		}
		return ""
	}
	dir, _ := os.Getwd()
	for ; dir != "/" && dir != "."; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "bin", "kubelet")
			if _, err := os.Stat(p); err == nil {
				return p
			}
			return ""
		}
	}
	return ""
}

// Kubelet is a standalone kubelet (no API server) driving a Daemon: its
// pods are static pods, read from manifests in ManifestDir, and their
// status is read from the read-only port's /pods.
type Kubelet struct {
	Binary string
	Daemon *Daemon
	// Dir holds everything of this kubelet: RootDir (--root-dir),
	// ManifestDir (staticPodPath), PodLogsDir (podLogsDir), its
	// configuration and its log.
	Dir, RootDir, ManifestDir, PodLogsDir string
	// CgroupRoot is the kubelet's cgroupRoot, made for it in every cgroup
	// hierarchy and removed when the test ends; its pods' cgroups are
	// under CgroupRoot/kubepods.
	CgroupRoot                      string
	Port, ReadOnlyPort, HealthzPort int
	// Config is the KubeletConfiguration it was started with.
	Config map[string]any

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// KubeletOptions configure StartKubelet.
type KubeletOptions struct {
	Binary string
	// Daemon is the runtime the kubelet drives; it must be running.
	Daemon *Daemon
	// Config entries replace the defaults in the KubeletConfiguration.
	Config map[string]any
}

// kubeletSysctls are the kernel settings the kubelet changes at start-up
// (setupKernelTunables, unless protectKernelDefaults, which instead
// refuses to start on a host that differs): saved and put back.
var kubeletSysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

// kubeletHost is what the kubelets change on the host once for all of them
// (kubeletSysctls, kubeletFixedDir and ContainerLogLinksDir, KUBE- iptables
// chains), as the first of the kubelets running at a time found it: the
// last one to stop puts it back, so that kubelets of tests running at once
// never restore what another still relies on.
var kubeletHost struct {
	sync.Mutex
	running int
	sysctls map[string]string
	chains  map[string]bool
	newDirs []string // made by the kubelets, whatever their --root-dir
}

// holdKubeletHost is called before a kubelet starts.
func holdKubeletHost() {
	h := &kubeletHost
	h.Lock()
	defer h.Unlock()
	h.running++
	if h.running > 1 {
		return
	}
	h.sysctls = map[string]string{}
	for _, s := range kubeletSysctls {
		if b, err := os.ReadFile("/proc/sys/" + s); err == nil {
			h.sysctls[s] = strings.TrimSpace(string(b))
		}
	}
	h.chains = iptablesChains()
	h.newDirs = nil
	for _, d := range []string{kubeletFixedDir, ContainerLogLinksDir} {
		if _, err := os.Stat(d); errors.Is(err, fs.ErrNotExist) {
			h.newDirs = append(h.newDirs, d)
		}
	}
}

// releaseKubeletHost is called once a kubelet has stopped; the last one puts
// the host back.
func releaseKubeletHost() {
	h := &kubeletHost
	h.Lock()
	defer h.Unlock()
	h.running--
	if h.running > 0 {
		return
	}
	for s, v := range h.sysctls {
		_ = os.WriteFile("/proc/sys/"+s, []byte(v), 0o644)
	}
	removeNewIptablesChains(h.chains)
	for _, d := range h.newDirs {
		_ = os.RemoveAll(d)
	}
}

// StartKubelet starts a standalone kubelet against opts.Daemon and waits
// until its healthz answers. When the test ends it deletes the static
// pods, waits for the kubelet to take them down, stops it, removes what it
// left in the runtime (dead sandboxes are only garbage-collected later)
// and on the host (its cgroups, its /var/log/containers links); the last
// of the kubelets running at once puts back the kernel settings, iptables
// chains and directories they changed (kubeletHost).
func StartKubelet(t testing.TB, opts KubeletOptions) *Kubelet {
	t.Helper()
	if opts.Binary == "" {
		t.Fatal("StartKubelet: no kubelet binary")
	}
	dir, err := os.MkdirTemp("", "crirt-kubelet-")
	if err != nil {
		t.Fatal(err)
	}
	k := &Kubelet{
		Binary: opts.Binary, Daemon: opts.Daemon, Dir: dir,
		RootDir:     filepath.Join(dir, "root"),
		ManifestDir: filepath.Join(dir, "manifests"),
		PodLogsDir:  filepath.Join(dir, "pods"),
		CgroupRoot:  "/" + filepath.Base(dir),
	}
	for _, d := range []string{k.RootDir, k.ManifestDir, k.PodLogsDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ports := freePorts(t, 3)
	k.Port, k.ReadOnlyPort, k.HealthzPort = ports[0], ports[1], ports[2]
	k.Config = map[string]any{
		"apiVersion":                  "kubelet.config.k8s.io/v1beta1",
		"kind":                        "KubeletConfiguration",
		"staticPodPath":               k.ManifestDir,
		"fileCheckFrequency":          "1s",
		"syncFrequency":               "5s",
		"address":                     "127.0.0.1",
		"port":                        k.Port,
		"readOnlyPort":                k.ReadOnlyPort,
		"healthzBindAddress":          "127.0.0.1",
		"healthzPort":                 k.HealthzPort,
		"authentication":              map[string]any{"anonymous": map[string]any{"enabled": true}, "webhook": map[string]any{"enabled": false}},
		"authorization":               map[string]any{"mode": "AlwaysAllow"},
		"containerRuntimeEndpoint":    "unix://" + opts.Daemon.Socket,
		"cgroupDriver":                "cgroupfs",
		"cgroupsPerQOS":               true,
		"cgroupRoot":                  k.CgroupRoot,
		"enforceNodeAllocatable":      []string{},
		"failCgroupV1":                false,
		"failSwapOn":                  false,
		"podLogsDir":                  k.PodLogsDir,
		"containerLogMaxSize":         "1Mi",
		"containerLogMaxFiles":        2,
		"containerLogMonitorInterval": "3s",
		"volumePluginDir":             filepath.Join(dir, "volume-plugins"),
		// Never evict or collect images on a development machine: the
		// thresholds are as low as the validation allows.
		"evictionHard":                map[string]string{"memory.available": "1Mi", "nodefs.available": "1%", "nodefs.inodesFree": "1%", "imagefs.available": "1%"},
		"imageGCHighThresholdPercent": 100,
		"imageGCLowThresholdPercent":  99,
		"registerNode":                false,
		"resolvConf":                  "/etc/resolv.conf",
	}
	for key, v := range opts.Config {
		k.Config[key] = v
	}
	cfg, err := json.MarshalIndent(k.Config, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kubelet.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := makeCgroup(k.CgroupRoot); err != nil {
		t.Fatal(err)
	}
	if k.log, err = os.Create(filepath.Join(dir, "kubelet.log")); err != nil {
		t.Fatal(err)
	}
	holdKubeletHost()
	t.Cleanup(func() {
		if err := k.cleanup(); err != nil {
			t.Errorf("stop kubelet: %v", err)
		}
		removeCgroupTree(k.CgroupRoot)
		removeLogLinks(k.PodLogsDir)
		releaseKubeletHost()
		if t.Failed() {
			t.Logf("kubelet log (tail):\n%s", k.LogTail(200))
		}
		// CRI_RUNTIME_KUBELET_LOGS=<dir> keeps every test's kubelet and
		// daemon logs there, to read what the kubelet met on a pass too.
		if keep := os.Getenv("CRI_RUNTIME_KUBELET_LOGS"); keep != "" {
			name := strings.ReplaceAll(t.Name(), "/", "_")
			_ = os.MkdirAll(keep, 0o755)
			_ = os.WriteFile(filepath.Join(keep, name+".kubelet.log"), []byte(k.Log()), 0o644)
			_ = os.WriteFile(filepath.Join(keep, name+".daemon.log"), []byte(k.Daemon.Logs()), 0o644)
		}
		_ = k.log.Close()
		// The kubelet makes its root dir a shared mount (of itself), and
		// leaves it when it stops.
		unmountUnder(dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("remove kubelet dir: %v", err)
		}
	})
	if err := k.Start(); err != nil {
		t.Fatalf("start kubelet: %v\n%s", err, k.LogTail(100))
	}
	return k
}

// Start runs the kubelet and waits until its healthz answers. It can be
// called again after Stop.
func (k *Kubelet) Start() error {
	k.mu.Lock()
	if k.cmd != nil {
		k.mu.Unlock()
		return errors.New("kubelet already running")
	}
	fmt.Fprintf(k.log, "\n--- kubelet started at %s ---\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(k.Binary,
		"--config", filepath.Join(k.Dir, "kubelet.json"),
		"--root-dir", k.RootDir,
		"--cert-dir", filepath.Join(k.Dir, "pki"),
		"--hostname-override", KubeletNodeName,
		"--v", "2",
	)
	cmd.Stdout, cmd.Stderr = k.log, k.log
	if err := cmd.Start(); err != nil {
		k.mu.Unlock()
		return err
	}
	k.cmd, k.done = cmd, make(chan struct{})
	done := k.done
	k.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		close(done)
	}()

	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-done:
			return errors.New("kubelet exited during start-up")
		default:
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", k.HealthzPort))
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("healthz: %s: %s", resp.Status, body)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kubelet not healthy after 90s: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stop stops the kubelet (SIGTERM, then SIGKILL after 30s). Its pods keep
// running in the runtime.
func (k *Kubelet) Stop() error {
	k.mu.Lock()
	cmd, done := k.cmd, k.done
	k.cmd = nil
	k.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return nil
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return errors.New("kubelet ignored SIGTERM for 30s")
	}
}

// Running reports whether the kubelet process is alive.
func (k *Kubelet) Running() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cmd == nil {
		return false
	}
	select {
	case <-k.done:
		return false
	default:
		return true
	}
}

// cleanup takes every static pod away through the kubelet, stops it, and
// removes the sandboxes it left in the runtime.
func (k *Kubelet) cleanup() error {
	var errs []error
	if k.Running() {
		manifests, _ := os.ReadDir(k.ManifestDir)
		for _, m := range manifests {
			_ = os.Remove(filepath.Join(k.ManifestDir, m.Name()))
		}
		deadline := time.Now().Add(90 * time.Second)
		for time.Now().Before(deadline) {
			if pods, err := k.Pods(); err == nil && len(pods) == 0 && k.runningContainers() == 0 {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if n := k.runningContainers(); n != 0 {
			errs = append(errs, fmt.Errorf("%d containers still running 90s after the static pods were deleted", n))
		}
	}
	if err := k.Stop(); err != nil {
		errs = append(errs, err)
	}
	if rt := k.Daemon.Runtime; rt != nil && k.Daemon.Pid() != 0 {
		ctx, cancel := ctxTimeout(time.Minute)
		defer cancel()
		pods, err := rt.ListPodSandbox(ctx, nil)
		if err != nil {
			errs = append(errs, err)
		}
		for _, p := range pods {
			if err := rt.StopPodSandbox(ctx, p.Id); err != nil {
				errs = append(errs, err)
			}
			if err := rt.RemovePodSandbox(ctx, p.Id); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// runningContainers counts the runtime's running containers (-1 when it
// cannot tell).
func (k *Kubelet) runningContainers() int {
	if k.Daemon.Runtime == nil || k.Daemon.Pid() == 0 {
		return -1
	}
	ctx, cancel := ctxTimeout(10 * time.Second)
	defer cancel()
	cs, err := k.Daemon.Runtime.ListContainers(ctx, nil)
	if err != nil {
		return -1
	}
	n := 0
	for _, c := range cs {
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			n++
		}
	}
	return n
}

// RunStaticPod writes pod's manifest into the static pod directory; the
// kubelet picks it up within a second. Namespace defaults to "default".
func (k *Kubelet) RunStaticPod(t testing.TB, pod *corev1.Pod) {
	t.Helper()
	pod.APIVersion, pod.Kind = "v1", "Pod"
	if pod.Namespace == "" {
		pod.Namespace = "default"
	}
	b, err := json.MarshalIndent(pod, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	// Written aside and renamed, so the kubelet never reads half a file
	// (it skips dot files).
	tmp := filepath.Join(k.ManifestDir, "."+pod.Name+".json")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(k.ManifestDir, pod.Name+".json")); err != nil {
		t.Fatal(err)
	}
}

// DeleteStaticPod removes the manifest of the static pod name.
func (k *Kubelet) DeleteStaticPod(t testing.TB, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(k.ManifestDir, name+".json")); err != nil {
		t.Fatal(err)
	}
}

// Pods are the kubelet's pods with their status, from its read-only port.
func (k *Kubelet) Pods() ([]corev1.Pod, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/pods", k.ReadOnlyPort))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /pods: %s: %s", resp.Status, body)
	}
	var list corev1.PodList
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("GET /pods: %w", err)
	}
	return list.Items, nil
}

// Pod is the static pod name (as in its manifest) with its status; nil
// when the kubelet does not have it.
func (k *Kubelet) Pod(name string) (*corev1.Pod, error) {
	pods, err := k.Pods()
	if err != nil {
		return nil, err
	}
	for i := range pods {
		if pods[i].Name == name+"-"+KubeletNodeName {
			return &pods[i], nil
		}
	}
	return nil, nil
}

// WaitPod polls the static pod name until cond holds, failing the test
// after timeout with the pod's last status and what is wanted.
func (k *Kubelet) WaitPod(t testing.TB, name, want string, timeout time.Duration, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last *corev1.Pod
	var lastErr error
	for time.Now().Before(deadline) {
		p, err := k.Pod(name)
		if err == nil && p != nil && cond(p) {
			return p
		}
		if p != nil {
			last = p
		}
		lastErr = err
		if !k.Running() {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	status := "absent"
	if last != nil {
		b, _ := json.MarshalIndent(last.Status, "", "  ")
		status = string(b)
	}
	t.Fatalf("pod %s: not %s after %v (kubelet running: %v, last error %v); last status:\n%s", name, want, timeout, k.Running(), lastErr, status)
	return nil
}

// WaitPodStopped waits until the runtime runs no container of the pod
// with the given UID. (The kubelet's /pods drops a static pod as soon as
// its manifest is deleted, while its preStop hooks and stops still run.)
func (k *Kubelet) WaitPodStopped(t testing.TB, uid string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := ctxTimeout(10 * time.Second)
		cs, err := k.Daemon.Runtime.ListContainers(ctx, &runtimeapi.ContainerFilter{
			State:         &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
			LabelSelector: map[string]string{"io.kubernetes.pod.uid": uid},
		})
		cancel()
		if err == nil && len(cs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s: %d containers still running after %v (%v)", uid, len(cs), timeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// LogTail is the last n lines of the kubelet's log.
func (k *Kubelet) LogTail(n int) string {
	b, _ := os.ReadFile(filepath.Join(k.Dir, "kubelet.log"))
	lines := strings.Split(string(b), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Log is the whole log of the kubelet.
func (k *Kubelet) Log() string {
	b, _ := os.ReadFile(filepath.Join(k.Dir, "kubelet.log"))
	return string(b)
}

// PodReady reports whether the pod's Ready condition is true.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// ContainerStatus is the status of the pod's (init) container name, nil
// when there is none yet.
func ContainerStatus(p *corev1.Pod, name string) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{p.Status.ContainerStatuses, p.Status.InitContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// cgroupMounts are the directories of the host's cgroup hierarchies.
func cgroupMounts() []string {
	var out []string
	ents, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range ents {
		p := filepath.Join("/sys/fs/cgroup", e.Name())
		if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
			if _, err := os.Stat(filepath.Join(p, "cgroup.procs")); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// makeCgroup makes the cgroup path in every hierarchy.
func makeCgroup(path string) error {
	for _, m := range cgroupMounts() {
		if err := os.MkdirAll(filepath.Join(m, path), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// removeCgroupTree removes the cgroup path and everything under it from
// every hierarchy, deepest first (cgroups go only with rmdir).
func removeCgroupTree(path string) {
	for _, m := range cgroupMounts() {
		var dirs []string
		_ = filepath.WalkDir(filepath.Join(m, path), func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			_ = os.Remove(d)
		}
	}
}

// CgroupTree lists the cgroup directories under path (relative to it) in
// the named hierarchy, e.g. "memory".
func CgroupTree(hierarchy, path string) []string {
	var out []string
	for _, m := range cgroupMounts() {
		if !strings.Contains(","+filepath.Base(m)+",", ","+hierarchy+",") {
			continue
		}
		root := filepath.Join(m, path)
		_ = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() && p != root {
				rel, _ := filepath.Rel(root, p)
				out = append(out, rel)
			}
			return nil
		})
	}
	return out
}

// ContainerLogLinksDir is where the kubelet links every container's log
// (a path fixed in the kubelet).
const ContainerLogLinksDir = "/var/log/containers"

// LogLinks are the kubelet's /var/log/containers links into podLogsDir.
func LogLinks(podLogsDir string) []string {
	var out []string
	ents, _ := os.ReadDir(ContainerLogLinksDir)
	for _, e := range ents {
		p := filepath.Join(ContainerLogLinksDir, e.Name())
		if target, err := os.Readlink(p); err == nil && strings.HasPrefix(target, podLogsDir+"/") {
			out = append(out, p)
		}
	}
	return out
}

func removeLogLinks(podLogsDir string) {
	for _, l := range LogLinks(podLogsDir) {
		_ = os.Remove(l)
	}
}

// unmountUnder detaches every mount at or below dir, deepest first.
func unmountUnder(dir string) {
	infos, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	sort.Slice(infos, func(i, j int) bool { return len(infos[i].Mountpoint) > len(infos[j].Mountpoint) })
	for _, m := range infos {
		_ = unix.Unmount(m.Mountpoint, unix.MNT_DETACH)
	}
}

// kubeletFixedDir is where the kubelet puts its device-plugin socket
// whatever its --root-dir.
const kubeletFixedDir = "/var/lib/kubelet"

// iptablesTables are the tables the kubelet adds chains to at start-up
// (KUBE-IPTABLES-HINT, KUBE-KUBELET-CANARY, and KUBE-FIREWALL with its
// INPUT and OUTPUT jumps), for IPv4 and IPv6.
var iptablesTables = []string{"filter", "nat", "mangle"}

// iptablesChains lists the chains present now, as "<cmd> <table> <chain>".
func iptablesChains() map[string]bool {
	out := map[string]bool{}
	for _, cmd := range []string{"iptables", "ip6tables"} {
		for _, table := range iptablesTables {
			b, err := exec.Command(cmd, "-w", "-t", table, "-S").Output()
			if err != nil {
				continue
			}
			for _, l := range strings.Split(string(b), "\n") {
				if f := strings.Fields(l); len(f) >= 2 && (f[0] == "-N" || f[0] == "-P") {
					out[cmd+" "+table+" "+f[1]] = true
				}
			}
		}
	}
	return out
}

// removeNewIptablesChains removes the KUBE- chains that are not in before,
// and the rules jumping to them: a kubelet that stops leaves them.
func removeNewIptablesChains(before map[string]bool) {
	for key := range iptablesChains() {
		f := strings.Fields(key)
		cmd, table, chain := f[0], f[1], f[2]
		if before[key] || !strings.HasPrefix(chain, "KUBE-") {
			continue
		}
		b, _ := exec.Command(cmd, "-w", "-t", table, "-S").Output()
		for _, l := range strings.Split(string(b), "\n") {
			rule := strings.Fields(l)
			if len(rule) > 2 && rule[0] == "-A" && strings.HasSuffix(l, "-j "+chain) {
				_ = exec.Command(cmd, append([]string{"-w", "-t", table, "-D"}, rule[1:]...)...).Run()
			}
		}
		_ = exec.Command(cmd, "-w", "-t", table, "-F", chain).Run()
		_ = exec.Command(cmd, "-w", "-t", table, "-X", chain).Run()
	}
}

// freePorts finds n free TCP ports (FreePort).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var out []int
	for range n {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// KubeletPodLogDir is the directory the kubelet gives a pod's logs under
// podLogsDir: <namespace>_<name>_<uid>.
func KubeletPodLogDir(podLogsDir string, p *corev1.Pod) string {
	return filepath.Join(podLogsDir, p.Namespace+"_"+p.Name+"_"+string(p.UID))
}

func ctxTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
