package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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

// TestKubelet runs the kubelet tests two at a time, alongside the other
// tests, whose daemons and networks are their own. Their kubelets change
// what the host has once for all of them (kernel settings,
// /var/lib/kubelet, the KUBE- iptables chains, /var/log/containers), and the
// framework puts it back when the last one stops. Longest first, so that
// the two lanes end together. `make test-kubelet` runs them alone;
// -run 'TestKubelet/Probes' picks one.
func TestKubelet(t *testing.T) {
	t.Parallel()
	type kubeletTest struct {
		name string
		test func(*testing.T)
	}
	all := []kubeletTest{
		{"StaticPodDeleteLeavesNothing", kubeletStaticPodDeleteLeavesNothing},
		{"SurvivesRestarts", kubeletSurvivesRestarts},
		{"Probes", kubeletProbes},
		{"PodFeatures", kubeletPodFeatures},
		{"StaticPodRunning", kubeletStaticPodRunning},
		{"InitContainersAndLogs", kubeletInitContainersAndLogs},
		{"StatsSummary", kubeletStatsSummary},
		{"LogRotation", kubeletLogRotation},
		{"HostNetworkPod", kubeletHostNetworkPod},
		{"PodShapeAndSecurity", kubeletPodShapeAndSecurity},
		{"TerminationStatus", kubeletTerminationStatus},
	}
	tests := make(chan kubeletTest, len(all))
	for _, tc := range all {
		tests <- tc
	}
	close(tests)
	var lanes sync.WaitGroup
	for range 2 {
		// Subtests that are not parallel run in their parent's slot;
		// t.Run may be called from several goroutines at once.
		lanes.Go(func() {
			for tc := range tests {
				t.Run(tc.name, tc.test)
			}
		})
	}
	lanes.Wait()
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
func kubeletStaticPodRunning(t *testing.T) {
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
func kubeletStaticPodDeleteLeavesNothing(t *testing.T) {
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
func kubeletProbes(t *testing.T) {
	k, _ := startKubelet(t)
	probe := func(h corev1.ProbeHandler) *corev1.Probe {
		// The default timeout (1s), as most pod authors leave it.
		return &corev1.Probe{ProbeHandler: h, PeriodSeconds: 1, FailureThreshold: 1}
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
func kubeletInitContainersAndLogs(t *testing.T) {
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

// Restarting the daemon under a running kubelet, or the kubelet above a
// running daemon, restarts no container: the kubelet sees the same
// containers, with the same IDs, still running.
func kubeletSurvivesRestarts(t *testing.T) {
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

	if err := k.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Second)
	after = k.WaitPod(t, "steady", "Running and Ready after a kubelet restart", time.Minute, running)
	st = framework.ContainerStatus(after, "main")
	if got := ctrID(t, after, "main"); got != id || st.RestartCount != 0 {
		t.Errorf("after the kubelet restarted: container %s restarts %d; want the same %s with 0", got, st.RestartCount, id)
	}
}

// What a pod author reads of a container that ended: the exit code, the
// reason (Error, OOMKilled) and the termination message the container
// wrote to /dev/termination-log.
func kubeletTerminationStatus(t *testing.T) {
	k, _ := startKubelet(t)
	pod := &corev1.Pod{
		ObjectMeta: metaName("ends"),
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptrTo(int64(1)),
			Containers: []corev1.Container{
				{
					Name: "fails", Image: framework.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
					Command: []string{"sh", "-c", "echo -n 'went wrong' > /dev/termination-log; exit 3"},
				},
				{
					// dd allocates and fills a 256 MiB buffer in a 32 MiB cgroup.
					Name: "oom", Image: framework.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
					Command:   []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"},
					Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")}},
				},
				{
					Name: "succeeds", Image: framework.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
					Command:                  []string{"sh", "-c", "echo fine; exit 0"},
					TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
				},
			},
		},
	}
	k.RunStaticPod(t, pod)
	p := k.WaitPod(t, "ends", "with every container terminated", 2*time.Minute, func(p *corev1.Pod) bool {
		for _, name := range []string{"fails", "oom", "succeeds"} {
			if st := framework.ContainerStatus(p, name); st == nil || st.State.Terminated == nil {
				return false
			}
		}
		return true
	})
	for _, c := range []struct {
		name, reason, message string
		code                  int32
	}{
		{"fails", "Error", "went wrong", 3},
		{"oom", "OOMKilled", "the container's cgroup ran out of memory", 137}, // the runtime's message
		{"succeeds", "Completed", "", 0},
	} {
		term := framework.ContainerStatus(p, c.name).State.Terminated
		if term.ExitCode != c.code || term.Reason != c.reason || term.Message != c.message {
			t.Errorf("container %s terminated with code %d reason %q message %q; want %d %q %q",
				c.name, term.ExitCode, term.Reason, term.Message, c.code, c.reason, c.message)
		}
		if term.StartedAt.IsZero() || term.FinishedAt.Before(&term.StartedAt) {
			t.Errorf("container %s: started %v finished %v", c.name, term.StartedAt, term.FinishedAt)
		}
	}
	if p.Status.Phase != corev1.PodFailed {
		t.Errorf("pod phase %s; want Failed", p.Status.Phase)
	}
}

// The kubelet rotates a container log past containerLogMaxSize (1Mi here)
// and has the runtime reopen it: the container's later output goes to the
// new file.
func kubeletLogRotation(t *testing.T) {
	k, _ := startKubelet(t)
	k.RunStaticPod(t, busyboxPod("chatty",
		"i=0; while [ $i -lt 25000 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done; "+
			"while true; do echo tick; sleep 0.5; done"))
	p := k.WaitPod(t, "chatty", "Running and Ready", 2*time.Minute, running)
	log := filepath.Join(framework.KubeletPodLogDir(k.PodLogsDir, p), "main", "0.log")
	deadline := time.Now().Add(90 * time.Second)
	for {
		rotated, _ := filepath.Glob(log + ".*")
		b, _ := os.ReadFile(log)
		if len(rotated) > 0 && strings.Contains(string(b), " stdout F tick\n") && !strings.Contains(string(b), "line-0-") {
			if len(b) >= 1<<20 {
				t.Errorf("%s is %d bytes after rotation; want below 1Mi", log, len(b))
			}
			break
		}
		if time.Now().After(deadline) {
			head := string(b)
			if len(head) > 200 {
				head = head[:200]
			}
			t.Fatalf("after 90s: rotated files %v, %s holds %d bytes starting %q; want a rotated file and new output in a fresh %s",
				rotated, log, len(b), head, filepath.Base(log))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// summary is the part of the kubelet's /stats/summary the tests read.
type summary struct {
	Pods []struct {
		PodRef     struct{ Name string }
		Containers []struct {
			Name string
			CPU  *struct {
				UsageCoreNanoSeconds *uint64
			}
			Memory *struct {
				WorkingSetBytes *uint64
			}
		}
		Network *struct {
			Interfaces []struct{ Name string }
		}
	}
}

// The kubelet's /stats/summary shows the pod's containers with their CPU
// and memory use, from the runtime's stats.
func kubeletStatsSummary(t *testing.T) {
	k, _ := startKubelet(t)
	k.RunStaticPod(t, busyboxPod("stats", "exec sleep 1000"))
	k.WaitPod(t, "stats", "Running and Ready", 2*time.Minute, running)
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/stats/summary", k.ReadOnlyPort))
		last = fmt.Sprintf("%v: %.2000s", err, body)
		var s summary
		if err == nil && json.Unmarshal(body, &s) == nil {
			for _, p := range s.Pods {
				if p.PodRef.Name != "stats-"+framework.KubeletNodeName {
					continue
				}
				for _, c := range p.Containers {
					if c.Name == "main" && c.CPU != nil && c.CPU.UsageCoreNanoSeconds != nil && *c.CPU.UsageCoreNanoSeconds > 0 &&
						c.Memory != nil && c.Memory.WorkingSetBytes != nil && *c.Memory.WorkingSetBytes > 0 {
						return
					}
				}
			}
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("no CPU and memory figures for the pod's container in /stats/summary after 90s; last: %s", last)
}

func httpGet(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, err
}

// What a pod spec asks of the node through the kubelet lands in the
// container: a host port reaching the container, a memory-backed emptyDir
// (a tmpfs the kubelet mounts under its root dir), a hostPath volume,
// postStart and preStop hooks, a safe sysctl, the user and a read-only root.
func kubeletPodFeatures(t *testing.T) {
	k, d := startKubelet(t)
	hostDir := t.TempDir()
	hostPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metaName("features"),
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptrTo(int64(5)),
			SecurityContext: &corev1.PodSecurityContext{
				Sysctls: []corev1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "0"}},
			},
			Volumes: []corev1.Volume{
				{Name: "mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
				{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir}}},
			},
			Containers: []corev1.Container{
				{
					Name: "web", Image: framework.HTTPDImage, ImagePullPolicy: corev1.PullIfNotPresent,
					Ports: []corev1.ContainerPort{{ContainerPort: 80, HostPort: int32(hostPort), Protocol: corev1.ProtocolTCP}},
				},
				{
					Name: "app", Image: framework.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
					Command:      []string{"sh", "-c", "exec sleep 1000"},
					VolumeMounts: []corev1.VolumeMount{{Name: "mem", MountPath: "/mem"}, {Name: "host", MountPath: "/host"}},
					SecurityContext: &corev1.SecurityContext{
						RunAsUser: ptrTo(int64(0)), ReadOnlyRootFilesystem: ptrTo(true),
					},
					Lifecycle: &corev1.Lifecycle{
						PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo started > /host/poststart"}}},
						PreStop:   &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo stopping > /host/prestop"}}},
					},
				},
				{
					Name: "user", Image: framework.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
					Command:         []string{"sh", "-c", "exec sleep 1000"},
					SecurityContext: &corev1.SecurityContext{RunAsUser: ptrTo(int64(1234)), RunAsGroup: ptrTo(int64(5678))},
				},
			},
		},
	}
	k.RunStaticPod(t, pod)
	p := k.WaitPod(t, "features", "Running and Ready", 2*time.Minute, running)
	app, user := ctrID(t, p, "app"), ctrID(t, p, "user")
	exec := func(id string, cmd ...string) string {
		out, stderr, err := d.Runtime.ExecSync(ctxT(t), id, cmd, 10*time.Second)
		if err != nil {
			t.Errorf("exec %v: %v (%s)", cmd, err, stderr)
		}
		return strings.TrimSpace(string(out))
	}
	if got := exec(app, "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"); got != "0" {
		t.Errorf("sysctl net.ipv4.ip_unprivileged_port_start = %q; want 0", got)
	}
	if got := exec(app, "sh", "-c", "grep ' /mem ' /proc/mounts | cut -d' ' -f3"); got != "tmpfs" {
		t.Errorf("/mem is on %q; want the kubelet's tmpfs", got)
	}
	if got := exec(app, "sh", "-c", "touch /rootfs-file 2>&1 || echo read-only"); !strings.Contains(got, "read-only") {
		t.Errorf("writing to the read-only root: %q; want it refused", got)
	}
	if got := exec(app, "sh", "-c", "echo hi > /mem/f && cat /mem/f"); got != "hi" {
		t.Errorf("memory emptyDir not writable: %q", got)
	}
	if got := exec(user, "id"); !strings.HasPrefix(got, "uid=1234 gid=5678") {
		t.Errorf("id = %q; want uid=1234 gid=5678", got)
	}
	if b, err := os.ReadFile(filepath.Join(hostDir, "poststart")); err != nil || string(b) != "started\n" {
		t.Errorf("postStart hook: %q, %v", b, err)
	}
	if body, err := httpGet(fmt.Sprintf("http://%s:%d/index.html", hostIP(t), hostPort)); err != nil || string(body) != framework.HTTPDIndex {
		t.Errorf("GET through host port %d: %q, %v", hostPort, body, err)
	}

	k.DeleteStaticPod(t, "features")
	k.WaitPodStopped(t, string(p.UID), time.Minute)
	if b, err := os.ReadFile(filepath.Join(hostDir, "prestop")); err != nil || string(b) != "stopping\n" {
		t.Errorf("preStop hook: %q, %v", b, err)
	}
}

// A host-network static pod (the usual control-plane pod) runs with the
// host's network namespace and name.
func kubeletHostNetworkPod(t *testing.T) {
	k, d := startKubelet(t)
	pod := busyboxPod("hostnet", "exec sleep 1000")
	pod.Spec.HostNetwork = true
	k.RunStaticPod(t, pod)
	p := k.WaitPod(t, "hostnet", "Running and Ready", 2*time.Minute, running)
	id := ctrID(t, p, "main")
	pid := runningPid(t, d, id)
	own, _ := os.Readlink("/proc/self/ns/net")
	theirs, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	if own != theirs {
		t.Errorf("container network namespace %s; want the host's %s", theirs, own)
	}
	out, _, err := d.Runtime.ExecSync(ctxT(t), id, []string{"hostname"}, 10*time.Second)
	if hn, _ := os.Hostname(); err != nil || strings.TrimSpace(string(out)) != hn {
		t.Errorf("hostname in the pod = %q, %v; want the host's %q", out, err, hn)
	}
	// A standalone kubelet has no node addresses, so it reports no pod IP
	// for a host-network pod (it ignores the runtime's for those).
}

// What a pod author asks of a pod's shape and security, through the
// kubelet: a sidecar (a restartable init container) runs beside the app; a
// shared process namespace shows each container the others' processes;
// hostname and subdomain make the pod's name; seccomp RuntimeDefault,
// dropped and added capabilities, and a privileged container.
func kubeletPodShapeAndSecurity(t *testing.T) {
	k, d := startKubelet(t)
	always := corev1.ContainerRestartPolicyAlways
	pod := &corev1.Pod{
		ObjectMeta: metaName("shape"),
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptrTo(int64(2)),
			ShareProcessNamespace:         ptrTo(true),
			Hostname:                      "shape-host",
			Subdomain:                     "sub",
			SecurityContext: &corev1.PodSecurityContext{
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			InitContainers: []corev1.Container{{
				Name: "sidecar", Image: framework.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
				RestartPolicy: &always,
				Command:       []string{"sh", "-c", "exec sleep 1001"},
			}},
			Containers: []corev1.Container{
				{
					Name: "app", Image: framework.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
					Command: []string{"sh", "-c", "exec sleep 1002"},
					SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{
						Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"NET_BIND_SERVICE"},
					}},
				},
				{
					Name: "priv", Image: framework.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
					Command:         []string{"sh", "-c", "exec sleep 1003"},
					SecurityContext: &corev1.SecurityContext{Privileged: ptrTo(true)},
				},
			},
		},
	}
	k.RunStaticPod(t, pod)
	p := k.WaitPod(t, "shape", "Running and Ready", 2*time.Minute, running)
	app, priv := ctrID(t, p, "app"), ctrID(t, p, "priv")
	if st := initContainerStatus(p, "sidecar"); st == nil || st.State.Running == nil {
		t.Errorf("sidecar is not running beside the app: %+v", st)
	}
	exec := func(id string, cmd ...string) string {
		out, stderr, err := d.Runtime.ExecSync(ctxT(t), id, cmd, 10*time.Second)
		if err != nil {
			t.Errorf("exec %v: %v (%s)", cmd, err, stderr)
		}
		return strings.TrimSpace(string(out))
	}
	// One PID namespace: the app sees the sidecar's and the other's sleep.
	ps := exec(app, "ps", "-o", "args")
	for _, want := range []string{"sleep 1001", "sleep 1002", "sleep 1003"} {
		if !strings.Contains(ps, want) {
			t.Errorf("the app's processes do not include %q (shareProcessNamespace):\n%s", want, ps)
		}
	}
	if got := exec(app, "hostname"); got != "shape-host" {
		t.Errorf("hostname = %q; want shape-host", got)
	}
	// Capabilities: only NET_BIND_SERVICE (bit 10) for the app; the
	// privileged container has them all, and no seccomp filter.
	status := func(id string) string { return exec(id, "cat", "/proc/self/status") }
	appStatus, privStatus := status(app), status(priv)
	if !strings.Contains(appStatus, "CapEff:\t0000000000000400") {
		t.Errorf("app capabilities; want only NET_BIND_SERVICE:\n%s", appStatus)
	}
	if !strings.Contains(appStatus, "Seccomp:\t2") {
		t.Errorf("app is not under a seccomp filter (RuntimeDefault):\n%s", appStatus)
	}
	if strings.Contains(privStatus, "CapEff:\t0000000000000000") || !strings.Contains(privStatus, "Seccomp:\t0") {
		t.Errorf("privileged container: want capabilities and no seccomp filter:\n%s", privStatus)
	}
}

func initContainerStatus(p *corev1.Pod, name string) *corev1.ContainerStatus {
	for i := range p.Status.InitContainerStatuses {
		if p.Status.InitContainerStatuses[i].Name == name {
			return &p.Status.InitContainerStatuses[i]
		}
	}
	return nil
}
