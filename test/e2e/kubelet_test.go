package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// The tests in this file run a real kubelet (k8s.io/kubernetes v1.37.2,
// built by `make kubelet` into bin/kubelet, or $KUBELET_BINARY) in
// standalone mode against the daemon, and check what a pod author sees:
// static pods, their status from the kubelet's read-only /pods, probes,
// restarts, logs, cgroups, and what is left once a pod is gone.

// startKubelet starts a daemon and a kubelet driving it, or skips the test
// when there is no kubelet binary.
func startKubelet(t *testing.T) (*framework.Kubelet, *framework.Daemon) {
	t.Helper()
	bin := framework.KubeletBinary()
	if bin == "" {
		t.Skip("no kubelet: run `make kubelet` (builds bin/kubelet) or set KUBELET_BINARY")
	}
	d := startPodDaemon(t)
	k := framework.StartKubelet(t, framework.KubeletOptions{Binary: bin, Daemon: d})
	return k, d
}

// busyboxPod is a static pod of one busybox container running script.
func busyboxPod(name, script string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metaName(name),
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptrTo(int64(2)),
			Containers: []corev1.Container{{
				Name: "main", Image: framework.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"sh", "-c", script},
			}},
		},
	}
}

func ptrTo[T any](v T) *T { return &v }

func metaName(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name} }

// running is the condition "phase Running and Ready".
func running(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodRunning && framework.PodReady(p)
}

// ctrID is the runtime's ID of the pod's container name, from its status
// ("<runtime>://<id>").
func ctrID(t *testing.T, p *corev1.Pod, name string) string {
	t.Helper()
	st := framework.ContainerStatus(p, name)
	if st == nil || st.ContainerID == "" {
		t.Fatalf("pod %s: container %s has no ID: %+v", p.Name, name, p.Status)
	}
	_, id, ok := strings.Cut(st.ContainerID, "://")
	if !ok {
		t.Fatalf("container ID %q is not <runtime>://<id>", st.ContainerID)
	}
	return id
}

// A static pod with one container becomes Running and Ready, with the
// limits of its spec in its container's cgroups: issue #12, where every
// CreateContainer of the kubelet failed on its hugepage limits.
func TestKubeletStaticPodRunning(t *testing.T) {
	k, d := startKubelet(t)
	pod := busyboxPod("web", "echo started; exec sleep 1000")
	pod.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
	}
	k.RunStaticPod(t, pod)
	p := k.WaitPod(t, "web", "Running and Ready", 2*time.Minute, running)
	if p.Status.PodIP == "" {
		t.Errorf("pod has no IP: %+v", p.Status)
	}
	id := ctrID(t, p, "main")
	pid := runningPid(t, d, id)
	if !hugetlbInV1() && !strings.Contains(d.Logs(), "controller=hugetlb") {
		t.Errorf("the kubelet sent no hugepage limits (or the daemon did not say it dropped them): issue #12 is not exercised")
	}
	for _, c := range []struct{ controller, file, want string }{
		{"memory", "memory.limit_in_bytes", strconv.Itoa(64 << 20)},
		{"cpu", "cpu.cfs_quota_us", "20000"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"cpu", "cpu.shares", "102"},
	} {
		if got, err := framework.CgroupV1File(pid, c.controller, c.file); err != nil || got != c.want {
			t.Errorf("container %s = %q, %v; want %s", c.file, got, err, c.want)
		}
	}
	// The container's cgroup is under the kubelet's pod cgroup, in its QoS
	// class (burstable: requests below limits).
	paths, _ := framework.CgroupPaths(pid)
	wantPrefix := filepath.Join(k.CgroupRoot, "kubepods", "burstable", "pod"+string(p.UID)) + "/"
	if !strings.HasPrefix(paths["memory"], wantPrefix) {
		t.Errorf("container memory cgroup %q; want under %s", paths["memory"], wantPrefix)
	}
}

// Deleting the manifest of a running static pod leaves nothing: no
// sandbox or container in the runtime, no mounts, monitor or process of
// the pod, no pod or container cgroups, no network namespace pins.
func TestKubeletStaticPodDeleteLeavesNothing(t *testing.T) {
	k, d := startKubelet(t)
	k.RunStaticPod(t, busyboxPod("gone", "exec sleep 1000"))
	p := k.WaitPod(t, "gone", "Running and Ready", 2*time.Minute, running)
	pid := runningPid(t, d, ctrID(t, p, "main"))
	podCgroup := filepath.Join(k.CgroupRoot, "kubepods", "besteffort", "pod"+string(p.UID))
	if tree := framework.CgroupTree("memory", podCgroup); len(tree) == 0 {
		t.Fatalf("the container has no cgroup under the pod's %s", podCgroup)
	}

	k.DeleteStaticPod(t, "gone")
	deadline := time.Now().Add(90 * time.Second)
	var left []string
	for time.Now().Before(deadline) {
		left = leftOfPod(t, k, d, pid, podCgroup)
		if len(left) == 0 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(left) != 0 {
		t.Fatalf("90s after the manifest was deleted, left:\n  %s", strings.Join(left, "\n  "))
	}
}

// leftOfPod lists what remains of a deleted pod whose container ran as pid.
func leftOfPod(t *testing.T, k *framework.Kubelet, d *framework.Daemon, pid int, podCgroup string) []string {
	var left []string
	if pods, err := k.Pods(); err != nil || len(pods) != 0 {
		left = append(left, fmt.Sprintf("kubelet pods: %d (%v)", len(pods), err))
	}
	if exists(fmt.Sprintf("/proc/%d", pid)) {
		left = append(left, fmt.Sprintf("container process %d", pid))
	}
	sbs, err := d.Runtime.ListPodSandbox(ctxT(t), nil)
	if err != nil {
		left = append(left, "ListPodSandbox: "+err.Error())
	}
	for _, s := range sbs {
		left = append(left, fmt.Sprintf("sandbox %s %s", s.Id[:12], s.State))
	}
	cs, err := d.Runtime.ListContainers(ctxT(t), nil)
	if err != nil {
		left = append(left, "ListContainers: "+err.Error())
	}
	for _, c := range cs {
		left = append(left, fmt.Sprintf("container %s %s", c.Id[:12], c.State))
	}
	if tree := framework.CgroupTree("memory", podCgroup); len(tree) != 0 || exists(filepath.Join("/sys/fs/cgroup/memory", podCgroup)) {
		left = append(left, fmt.Sprintf("pod cgroup %s: %v", podCgroup, tree))
	}
	for _, dir := range []string{d.Dir, k.Dir} {
		for _, m := range mountsUnder(t, dir) {
			if m.FSType != "overlay" && strings.HasSuffix(m.Point, "/storage/overlay") || m.Point == k.RootDir {
				continue // the store's and the kubelet's own bind mounts, there for their lives
			}
			left = append(left, fmt.Sprintf("mount %s (%s)", m.Point, m.FSType))
		}
	}
	if links := framework.LogLinks(k.PodLogsDir); len(links) != 0 {
		left = append(left, "log links: "+strings.Join(links, ", "))
	}
	return left
}

// A failing liveness probe restarts the container (restartCount rises),
// while exec, httpGet and tcpSocket readiness probes make the pod Ready.
func TestKubeletProbes(t *testing.T) {
	k, _ := startKubelet(t)
	probe := func(h corev1.ProbeHandler) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: h, PeriodSeconds: 1, FailureThreshold: 1, TimeoutSeconds: 2}
	}
	pod := &corev1.Pod{
		ObjectMeta: metaName("probes"),
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptrTo(int64(1)),
			Containers: []corev1.Container{
				{
					Name: "http", Image: framework.HTTPDImage, ImagePullPolicy: corev1.PullIfNotPresent,
					ReadinessProbe: probe(corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/index.html", Port: intstr.FromInt32(80)}}),
					LivenessProbe:  probe(corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}),
				},
				{
					Name: "exec", Image: framework.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
					Command:        []string{"sh", "-c", "touch /tmp/ready; exec sleep 1000"},
					ReadinessProbe: probe(corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/ready"}}}),
				},
				{
					// Alive while /tmp/alive exists: it is removed after 3s,
					// so the liveness probe fails and the kubelet restarts
					// the container, which makes it again.
					Name: "flaky", Image: framework.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
					Command:       []string{"sh", "-c", "touch /tmp/alive; sleep 3; rm /tmp/alive; exec sleep 1000"},
					LivenessProbe: probe(corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-e", "/tmp/alive"}}}),
				},
			},
		},
	}
	k.RunStaticPod(t, pod)
	k.WaitPod(t, "probes", "Ready with http and exec containers ready", 2*time.Minute, func(p *corev1.Pod) bool {
		h, e := framework.ContainerStatus(p, "http"), framework.ContainerStatus(p, "exec")
		return h != nil && h.Ready && e != nil && e.Ready
	})
	p := k.WaitPod(t, "probes", "flaky restarted twice", 2*time.Minute, func(p *corev1.Pod) bool {
		f := framework.ContainerStatus(p, "flaky")
		return f != nil && f.RestartCount >= 2
	})
	for _, name := range []string{"http", "exec"} {
		if st := framework.ContainerStatus(p, name); st.RestartCount != 0 || !st.Ready {
			t.Errorf("container %s: restarts %d ready %v; want 0 and ready (its probes pass)", name, st.RestartCount, st.Ready)
		}
	}
	if f := framework.ContainerStatus(p, "flaky"); f.LastTerminationState.Terminated == nil {
		t.Errorf("flaky restarted without a last termination state: %+v", f)
	}
}

// Init containers run one after the other, before the app, and share an
// emptyDir with it; each container's log is at the kubelet's path under
// podLogsDir and the earlier attempt's log is kept across a restart.
func TestKubeletInitContainersAndLogs(t *testing.T) {
	k, d := startKubelet(t)
	mount := []corev1.VolumeMount{{Name: "shared", MountPath: "/shared"}}
	pod := &corev1.Pod{
		ObjectMeta: metaName("init"),
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptrTo(int64(1)),
			Volumes:                       []corev1.Volume{{Name: "shared", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			InitContainers: []corev1.Container{
				{Name: "first", Image: framework.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent, VolumeMounts: mount,
					Command: []string{"sh", "-c", "echo first >> /shared/order; echo init-one-says-hi"}},
				{Name: "second", Image: framework.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent, VolumeMounts: mount,
					Command: []string{"sh", "-c", "test -e /shared/order && echo second >> /shared/order"}},
			},
			Containers: []corev1.Container{{
				Name: "app", Image: framework.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent, VolumeMounts: mount,
				// Prints the order, then exits once so the kubelet restarts it.
				Command: []string{"sh", "-c", "echo app >> /shared/order; cat /shared/order; " +
					"if [ ! -e /shared/restarted ]; then touch /shared/restarted; echo attempt-0; exit 3; fi; echo attempt-1; exec sleep 1000"},
			}},
		},
	}
	k.RunStaticPod(t, pod)
	p := k.WaitPod(t, "init", "Running and Ready after one restart of app", 2*time.Minute, func(p *corev1.Pod) bool {
		a := framework.ContainerStatus(p, "app")
		return running(p) && a != nil && a.RestartCount == 1 && a.Ready
	})
	for _, name := range []string{"first", "second"} {
		st := framework.ContainerStatus(p, name)
		if st == nil || st.State.Terminated == nil || st.State.Terminated.ExitCode != 0 {
			t.Errorf("init container %s: %+v; want terminated with 0", name, st)
		}
	}
	out, _, err := d.Runtime.ExecSync(ctxT(t), ctrID(t, p, "app"), []string{"cat", "/shared/order"}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), "first\nsecond\napp\napp\n"; got != want {
		t.Errorf("/shared/order = %q; want %q (init containers in order, before the app, then its restart)", got, want)
	}

	// Logs: <podLogsDir>/<ns>_<name>_<uid>/<container>/<attempt>.log.
	dir := framework.KubeletPodLogDir(k.PodLogsDir, p)
	for _, c := range []struct{ file, want string }{
		{"first/0.log", "init-one-says-hi"},
		{"app/0.log", "attempt-0"},
		{"app/1.log", "attempt-1"},
	} {
		b, err := os.ReadFile(filepath.Join(dir, c.file))
		if err != nil {
			ents, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
			t.Errorf("log %s: %v (logs present: %v)", c.file, err, ents)
			continue
		}
		if !strings.Contains(string(b), " stdout F "+c.want+"\n") {
			t.Errorf("log %s = %q; want a CRI log line with %q", c.file, b, c.want)
		}
	}
	if links := framework.LogLinks(k.PodLogsDir); len(links) == 0 {
		t.Errorf("no links in %s to the pod's logs", framework.ContainerLogLinksDir)
	}
}

// Restarting the daemon under a running kubelet restarts no container:
// the kubelet sees the same containers, with the same IDs, still running.
func TestKubeletSurvivesDaemonRestart(t *testing.T) {
	k, d := startKubelet(t)
	k.RunStaticPod(t, busyboxPod("steady", "exec sleep 1000"))
	before := k.WaitPod(t, "steady", "Running and Ready", 2*time.Minute, running)
	id := ctrID(t, before, "main")
	if err := d.Stop(syscall.SIGTERM, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // the kubelet's relist and probes meet no runtime
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	// Long enough for several relists (1s) and pod syncs (5s).
	time.Sleep(15 * time.Second)
	after := k.WaitPod(t, "steady", "Running and Ready", time.Minute, running)
	st := framework.ContainerStatus(after, "main")
	if got := ctrID(t, after, "main"); got != id || st.RestartCount != 0 {
		t.Errorf("after the daemon restarted: container %s restarts %d; want the same %s with 0", got, st.RestartCount, id)
	}
	cs, err := d.Runtime.ListContainers(ctxT(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Id != id || cs[0].State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("runtime containers after the restart: %v; want only %s, running", cs, id)
	}
}
