package e2e

// Container stop, removal, names, listing, failed creates, isolation between
// the containers of one pod, and what pod stop and removal do to containers.

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

const (
	trapTermExit0 = `trap 'exit 0' TERM; echo up; while true; do sleep 0.1; done`
	ignoreTerm    = `trap '' TERM; echo up; while true; do sleep 0.1; done`
)

// runUp runs a busybox container with script (which prints "up" first) and
// waits until it has printed it, so that its traps are set.
func runUp(t *testing.T, d *framework.Daemon, pod string, podCfg *runtimeapi.PodSandboxConfig, name, script string) string {
	t.Helper()
	cfg := shCfg(name, script)
	id := runCtr(t, d, pod, podCfg, cfg)
	waitLog(t, podCfg, cfg, []string{"up"}, nil)
	return id
}

// stopCtr stops a container, checks it is EXITED as the call returns, and
// reports how long the call took.
func stopCtr(t *testing.T, d *framework.Daemon, id string, timeout int64) (*runtimeapi.ContainerStatus, time.Duration) {
	t.Helper()
	start := time.Now()
	if err := d.Runtime.StopContainer(ctxT(t), id, timeout); err != nil {
		t.Fatalf("StopContainer(%s, %d): %v", id, timeout, err)
	}
	took := time.Since(start)
	st := d.CtrStatus(t, id)
	if st.State != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Fatalf("state as StopContainer(%d) returned = %v; want EXITED", timeout, st.State)
	}
	return st, took
}

func TestContainerStop(t *testing.T) {
	t.Parallel()
	d, _ := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "stop")

	t.Run("SIGTERM handled", func(t *testing.T) {
		id := runUp(t, d, pod, podCfg, "term", trapTermExit0)
		st, took := stopCtr(t, d, id, 20)
		if st.ExitCode != 0 || st.Reason != "Completed" {
			t.Errorf("after SIGTERM (took %v): ExitCode %d Reason %q; want 0 Completed: the trap must have run", took, st.ExitCode, st.Reason)
		}
		if st.FinishedAt < st.StartedAt || st.FinishedAt > time.Now().UnixNano() {
			t.Errorf("StartedAt %d FinishedAt %d; want FinishedAt between start and now", st.StartedAt, st.FinishedAt)
		}
	})
	t.Run("SIGTERM ignored, killed after the timeout", func(t *testing.T) {
		id := runUp(t, d, pod, podCfg, "ignore", ignoreTerm)
		pid := runningPid(t, d, id)
		st, took := stopCtr(t, d, id, 2)
		if took < 1500*time.Millisecond || took > 30*time.Second {
			t.Errorf("StopContainer(timeout 2) took %v; want about 2s", took)
		}
		if st.ExitCode != 137 || st.Reason != "Error" {
			t.Errorf("ExitCode %d Reason %q; want 137 (SIGKILL) Error", st.ExitCode, st.Reason)
		}
		if exists("/proc/" + strconv.Itoa(pid)) {
			t.Errorf("process %d still exists after stop", pid)
		}
		// Stopping again, or an unknown container, succeeds and changes nothing.
		for _, x := range []string{id, strings.Repeat("cd", 32)} {
			if err := d.Runtime.StopContainer(ctxT(t), x, 0); err != nil {
				t.Errorf("StopContainer(%s) again = %v; want success", x, err)
			}
		}
		if again := d.CtrStatus(t, id); again.State != st.State || again.ExitCode != 137 || again.FinishedAt != st.FinishedAt {
			t.Errorf("after a second stop: %v exit %d FinishedAt %d; want unchanged %v 137 %d", again.State, again.ExitCode, again.FinishedAt, st.State, st.FinishedAt)
		}
	})
	t.Run("timeout 0 kills at once", func(t *testing.T) {
		id := runUp(t, d, pod, podCfg, "zero", ignoreTerm)
		st, took := stopCtr(t, d, id, 0)
		if st.ExitCode != 137 {
			t.Errorf("ExitCode %d (stop took %v); want 137", st.ExitCode, took)
		}
	})
	t.Run("image STOPSIGNAL", func(t *testing.T) {
		d, name := daemonWithImage(t, "stopsig", func(c *v1.Config) { c.StopSignal = "SIGUSR1" })
		pod, podCfg := ctrPod(t, d, "stopsig")
		cfg := shCfg("usr1", `trap 'echo got-usr1; exit 0' USR1; trap '' TERM; echo up; while true; do sleep 0.1; done`)
		cfg.Image = spec(name)
		id := runCtr(t, d, pod, podCfg, cfg)
		waitLog(t, podCfg, cfg, []string{"up"}, nil)
		if st, took := stopCtr(t, d, id, 20); st.ExitCode != 0 {
			t.Errorf("ExitCode %d after %v; want 0: the stop must send the image's STOPSIGNAL (SIGUSR1)", st.ExitCode, took)
		}
		waitLog(t, podCfg, cfg, []string{"up", "got-usr1"}, nil)
	})
}

// checkCtrGone checks that a removed container is unknown and unlisted at
// once, and soon has no storage: neither its entry in the store nor its
// directories, nor the writable layer it had (sc, taken before removal).
// The daemon deletes those after RemoveContainer returns.
func checkCtrGone(t *testing.T, d *framework.Daemon, id string, sc *framework.StorageContainer) {
	t.Helper()
	if _, err := d.Runtime.ContainerStatus(ctxT(t), id, false); !isNotFound(err) {
		t.Errorf("ContainerStatus(%s) after removal = %v; want NotFound", id, err)
	}
	if got := d.ListCtrIDs(t, &runtimeapi.ContainerFilter{Id: id}); len(got) != 0 {
		t.Errorf("removed container %s is still listed", id)
	}
	layer := ""
	if sc != nil {
		layer = sc.Layer
	}
	left := func() []string {
		var out []string
		if slices.Contains(storageIDs(t, d), id) {
			out = append(out, "storage container "+id)
		}
		for _, p := range d.StorageContainerPaths(id, layer) {
			if exists(p) {
				out = append(out, p)
			}
		}
		return out
	}
	if !eventually(30*time.Second, func() bool { return len(left()) == 0 }) {
		t.Errorf("left after removal: %v", left())
	}
}

func TestContainerRemove(t *testing.T) {
	t.Parallel()
	d, bb := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "remove")

	exited := runCtr(t, d, pod, podCfg, shCfg("exited", "true"))
	d.WaitExited(t, exited)
	running := runUp(t, d, pod, podCfg, "running", ignoreTerm)
	pid := runningPid(t, d, running)
	created := createCtr(t, d, pod, podCfg, shCfg("created", "true"))

	// While containers stand on the image, it cannot be removed.
	if err := d.Images.RemoveImage(ctxT(t), spec(framework.BusyboxImage)); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), running) {
		t.Errorf("RemoveImage of an image in use = %v; want FailedPrecondition naming its containers (e.g. %s)", err, running)
	}
	for _, x := range []struct{ what, id string }{{"exited", exited}, {"running", running}, {"created", created}} {
		sc := storageOf(t, d, x.id)
		if sc == nil {
			t.Errorf("%s container %s has no storage before removal", x.what, x.id)
		}
		if err := d.Runtime.RemoveContainer(ctxT(t), x.id); err != nil {
			t.Errorf("RemoveContainer(%s container): %v", x.what, err)
			continue
		}
		checkCtrGone(t, d, x.id, sc)
		if err := d.Runtime.RemoveContainer(ctxT(t), x.id); err != nil {
			t.Errorf("RemoveContainer(%s container) again = %v; want success", x.what, err)
		}
	}
	if !eventually(10*time.Second, func() bool { return !exists("/proc/" + strconv.Itoa(pid)) }) {
		t.Errorf("process %d of the removed running container is still there", pid)
	}
	if err := d.Runtime.RemoveContainer(ctxT(t), strings.Repeat("ef", 32)); err != nil {
		t.Errorf("RemoveContainer(unknown) = %v; want success", err)
	}
	if err := d.Images.RemoveImage(ctxT(t), spec(bb.id)); err != nil {
		t.Errorf("RemoveImage once no container uses it: %v", err)
	}
	if ids := storageIDs(t, d); len(ids) != 0 {
		t.Errorf("storage containers left after removing them all: %v", ids)
	}
}

// TestContainerRemoveInBackground: RemoveContainer returns before the
// container's writable layer is deleted (the test build stalls that half
// here, after "runc delete"), and what needs the layer gone waits for it
// instead of failing or leaving it: RemoveImage of the container's image
// succeeds at once, and RemovePodSandbox leaves no storage. A container
// of the same name is made meanwhile.
func TestContainerRemoveInBackground(t *testing.T) {
	t.Parallel()
	needCrashPoints(t)
	d := framework.NewDaemon(t, framework.Options{Binary: binaryFor(t), Args: []string{"--registries-conf", registriesConf}})
	d.Env = []string{"CRI_RUNTIME_STALL_AT=ctr-remove:deleted=3s"}
	if err := d.Start(); err != nil {
		t.Fatalf("start: %v\n%s", err, d.Logs())
	}
	cleanupPods(t, d)
	bb := factsOf(t, framework.BusyboxImage)
	pull(t, d, framework.BusyboxImage, bb)
	pod, podCfg := ctrPod(t, d, "remove-bg")

	first := runCtr(t, d, pod, podCfg, shCfg("main", "exec sleep 1000"))
	if err := d.Runtime.RemoveContainer(ctxT(t), first); err != nil {
		t.Fatalf("RemoveContainer: %v", err)
	}
	if _, err := d.Runtime.ContainerStatus(ctxT(t), first, false); !isNotFound(err) {
		t.Errorf("ContainerStatus after RemoveContainer = %v; want NotFound at once", err)
	}
	if got := d.ListCtrIDs(t, nil); len(got) != 0 {
		t.Errorf("containers listed after RemoveContainer: %v; want none at once", got)
	}
	// The image's last container is removed: the image is free, although
	// the writable layer on it is still being deleted.
	if err := d.Images.RemoveImage(ctxT(t), spec(bb.id)); err != nil {
		t.Errorf("RemoveImage right after RemoveContainer of its only container = %v; want success", err)
	}
	if ids := storageIDs(t, d); len(ids) != 0 {
		t.Errorf("storage containers after RemoveImage: %v; want none", ids)
	}

	pull(t, d, framework.BusyboxImage, bb)
	second := runCtr(t, d, pod, podCfg, shCfg("main", "exec sleep 1000"))
	if err := d.Runtime.RemoveContainer(ctxT(t), second); err != nil {
		t.Fatalf("RemoveContainer: %v", err)
	}
	// Its name is free while its layer goes.
	third := createCtr(t, d, pod, podCfg, shCfg("main", "exec sleep 1000"))
	if third == second {
		t.Fatalf("the new container got the removed one's ID %s", second)
	}
	if err := d.Runtime.StopPodSandbox(ctxT(t), pod); err != nil {
		t.Fatal(err)
	}
	if err := d.Runtime.RemovePodSandbox(ctxT(t), pod); err != nil {
		t.Fatalf("RemovePodSandbox right after RemoveContainer: %v", err)
	}
	if ids := storageIDs(t, d); len(ids) != 0 {
		t.Errorf("storage containers after RemovePodSandbox: %v; want none", ids)
	}
}

// TestContainerPodStopRemove: stopping a pod stops its containers; removing
// it removes them.
func TestContainerPodStopRemove(t *testing.T) {
	t.Parallel()
	d, _ := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "podstop")
	a := runUp(t, d, pod, podCfg, "a", trapTermExit0)
	b := runUp(t, d, pod, podCfg, "b", trapTermExit0)
	c := createCtr(t, d, pod, podCfg, shCfg("c", "true"))
	pids := []int{runningPid(t, d, a), runningPid(t, d, b)}
	if err := d.Runtime.StopPodSandbox(ctxT(t), pod); err != nil {
		t.Fatalf("StopPodSandbox: %v", err)
	}
	for _, id := range []string{a, b} {
		if st := d.CtrStatus(t, id); st.State != runtimeapi.ContainerState_CONTAINER_EXITED {
			t.Errorf("container %s is %v after StopPodSandbox returned; want EXITED", st.Metadata.GetName(), st.State)
		}
	}
	for _, pid := range pids {
		if exists("/proc/" + strconv.Itoa(pid)) {
			t.Errorf("process %d still exists after StopPodSandbox", pid)
		}
	}
	// A second pod, ready and with a running container, is removed outright.
	pod2, podCfg2 := ctrPod(t, d, "podremove")
	e := runUp(t, d, pod2, podCfg2, "e", ignoreTerm)
	pid := runningPid(t, d, e)
	scs := map[string]*framework.StorageContainer{}
	for _, id := range []string{a, b, c, e} {
		scs[id] = storageOf(t, d, id)
	}
	for _, p := range []string{pod, pod2} {
		if err := d.Runtime.RemovePodSandbox(ctxT(t), p); err != nil {
			t.Fatalf("RemovePodSandbox(%s): %v", p, err)
		}
	}
	for _, id := range []string{a, b, c, e} {
		checkCtrGone(t, d, id, scs[id])
	}
	if exists("/proc/" + strconv.Itoa(pid)) {
		t.Errorf("process %d of a removed pod's container still exists", pid)
	}
	if got := d.ListCtrIDs(t, nil); len(got) != 0 {
		t.Errorf("containers listed after their pods were removed: %v", got)
	}
}

func TestContainerNames(t *testing.T) {
	t.Parallel()
	d, _ := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "names")
	cfg := shCfg("same", "true")
	first := createCtr(t, d, pod, podCfg, cfg)
	if id, err := d.Runtime.CreateContainer(ctxT(t), pod, cfg, podCfg); status.Code(err) != codes.AlreadyExists || !strings.Contains(err.Error(), first) {
		t.Errorf("second CreateContainer with the same metadata = %q, %v; want AlreadyExists naming %s", id, err, first)
	}
	if got := d.ListCtrIDs(t, nil); !slices.Equal(got, []string{first}) {
		t.Errorf("containers after a refused duplicate = %v; want only %s", got, first)
	}
	next := proto.Clone(cfg).(*runtimeapi.ContainerConfig)
	next.Metadata.Attempt = 1
	if id := createCtr(t, d, pod, podCfg, next); id == first {
		t.Errorf("attempt 1 got the ID of attempt 0")
	}
	pod2, podCfg2 := ctrPod(t, d, "names2")
	if id := createCtr(t, d, pod2, podCfg2, cfg); id == first {
		t.Errorf("the same name in another pod got the same ID")
	}
	if err := d.Runtime.RemoveContainer(ctxT(t), first); err != nil {
		t.Fatal(err)
	}
	createCtr(t, d, pod, podCfg, cfg) // the name is free again
}

func TestContainerListFilters(t *testing.T) {
	t.Parallel()
	d, _ := startCtrDaemon(t)
	p1, podCfg1 := ctrPod(t, d, "list1")
	p2, podCfg2 := ctrPod(t, d, "list2")
	mk := func(pod string, podCfg *runtimeapi.PodSandboxConfig, name, script string, labels map[string]string) string {
		cfg := shCfg(name, script)
		cfg.Labels = labels
		return createCtr(t, d, pod, podCfg, cfg)
	}
	a := mk(p1, podCfg1, "a", "exec sleep 1000", map[string]string{"app": "web", "tier": "front"})
	b := mk(p1, podCfg1, "b", "true", map[string]string{"app": "web", "tier": "back"})
	c := mk(p1, podCfg1, "c", "true", map[string]string{"app": "db"})
	e := mk(p2, podCfg2, "e", "true", map[string]string{"app": "web"})
	startCtr(t, d, a)
	startCtr(t, d, c)
	d.WaitExited(t, c)

	prefix := a[:12]
	for _, other := range []string{b, c, e} {
		for strings.HasPrefix(other, prefix) {
			prefix = a[:len(prefix)+1]
		}
	}
	state := func(s runtimeapi.ContainerState) *runtimeapi.ContainerStateValue {
		return &runtimeapi.ContainerStateValue{State: s}
	}
	created, running, exited := runtimeapi.ContainerState_CONTAINER_CREATED, runtimeapi.ContainerState_CONTAINER_RUNNING, runtimeapi.ContainerState_CONTAINER_EXITED
	for _, tc := range []struct {
		name   string
		filter *runtimeapi.ContainerFilter
		want   []string
	}{
		{"none", nil, sorted(a, b, c, e)},
		{"empty", &runtimeapi.ContainerFilter{}, sorted(a, b, c, e)},
		{"full id", &runtimeapi.ContainerFilter{Id: b}, []string{b}},
		{"id prefix", &runtimeapi.ContainerFilter{Id: prefix}, []string{a}},
		{"unknown id", &runtimeapi.ContainerFilter{Id: strings.Repeat("0", 64)}, []string{}},
		{"created", &runtimeapi.ContainerFilter{State: state(created)}, sorted(b, e)},
		{"running", &runtimeapi.ContainerFilter{State: state(running)}, []string{a}},
		{"exited", &runtimeapi.ContainerFilter{State: state(exited)}, []string{c}},
		{"pod", &runtimeapi.ContainerFilter{PodSandboxId: p1}, sorted(a, b, c)},
		{"other pod", &runtimeapi.ContainerFilter{PodSandboxId: p2}, []string{e}},
		{"one label", &runtimeapi.ContainerFilter{LabelSelector: map[string]string{"app": "web"}}, sorted(a, b, e)},
		{"two labels", &runtimeapi.ContainerFilter{LabelSelector: map[string]string{"app": "web", "tier": "back"}}, []string{b}},
		{"label mismatch", &runtimeapi.ContainerFilter{LabelSelector: map[string]string{"app": "none"}}, []string{}},
		{"pod and label", &runtimeapi.ContainerFilter{PodSandboxId: p2, LabelSelector: map[string]string{"app": "web"}}, []string{e}},
		{"pod and state", &runtimeapi.ContainerFilter{PodSandboxId: p2, State: state(running)}, []string{}},
		{"id and state", &runtimeapi.ContainerFilter{Id: a, State: state(exited)}, []string{}},
	} {
		if got := d.ListCtrIDs(t, tc.filter); !slices.Equal(got, tc.want) {
			t.Errorf("ListContainers(%s) = %v; want %v", tc.name, got, tc.want)
		}
	}
}

// TestContainerCreateFailures: refused creates leave nothing behind.
func TestContainerCreateFailures(t *testing.T) {
	t.Parallel()
	d, _ := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "failures")
	hostDir := t.TempDir()
	for _, tc := range []struct {
		name   string
		pod    string
		change func(*runtimeapi.ContainerConfig)
		code   codes.Code
		inMsg  string
	}{
		{"image not pulled", pod, func(c *runtimeapi.ContainerConfig) { c.Image = spec(framework.UIDGIDImage) }, codes.NotFound, "pull"},
		{"unknown pod", strings.Repeat("12", 32), nil, codes.NotFound, ""},
		{"relative container path", pod, func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "relative/dir", HostPath: hostDir}}
		}, codes.InvalidArgument, ""},
		{"missing host path", pod, func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/mnt", HostPath: hostDir + "/does-not-exist"}}
		}, codes.InvalidArgument, ""},
		// Fails only once runc looks for the binary; any code will do.
		{"command not in the image", pod, func(c *runtimeapi.ContainerConfig) { c.Command = []string{"/no/such/binary"} }, codes.OK, ""},
	} {
		cfg := shCfg("bad", "true")
		if tc.change != nil {
			tc.change(cfg)
		}
		id, err := d.Runtime.CreateContainer(ctxT(t), tc.pod, cfg, podCfg)
		if err == nil {
			if rerr := d.Runtime.RemoveContainer(ctxT(t), id); rerr != nil {
				t.Errorf("%s: RemoveContainer: %v", tc.name, rerr)
			}
		}
		if err == nil && tc.code == codes.OK {
			t.Logf("%s: CreateContainer succeeded; the daemon leaves the failure to StartContainer", tc.name)
			continue
		}
		if err == nil || (tc.code != codes.OK && status.Code(err) != tc.code) || !strings.Contains(strings.ToLower(status.Convert(err).Message()), tc.inMsg) {
			t.Errorf("%s: CreateContainer = %q, %v; want %v (with %q in the message)", tc.name, id, err, tc.code, tc.inMsg)
		}
	}
	if got := d.ListCtrIDs(t, nil); len(got) != 0 {
		t.Errorf("containers listed after failed creates: %v", got)
	}
	if !eventually(30*time.Second, func() bool { return len(storageIDs(t, d)) == 0 }) { // removals finish in the background
		t.Errorf("storage containers left by failed creates: %v", storageIDs(t, d))
	}
	// (containers/storage bind-mounts its driver's home on itself; that one stays.)
	for _, m := range mountsUnder(t, filepath.Join(d.Root, "storage")) {
		if m.FSType == "overlay" || !strings.HasSuffix(m.Point, "/storage/overlay") {
			t.Errorf("mount left in the store by failed creates: %v", m)
		}
	}
	if ps := framework.ProcsMentioning(t, d.Dir, d.Pid()); len(ps) != 0 {
		t.Errorf("processes (conmon, runc?) left by failed creates: %v", ps)
	}
	// The name the failures used is free.
	id := runCtr(t, d, pod, podCfg, shCfg("bad", "true"))
	if st := d.WaitExited(t, id); st.ExitCode != 0 {
		t.Errorf("a good container after the failures exited %d; want 0", st.ExitCode)
	}
}

// TestContainerIsolation: containers from one image in one pod each have
// their own environment and writable layer, and leave the image as it was.
func TestContainerIsolation(t *testing.T) {
	t.Parallel()
	d, bb := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "isolation")
	mk := func(name, script string) (string, *runtimeapi.ContainerConfig) {
		cfg := shCfg(name, script)
		cfg.Envs = []*runtimeapi.KeyValue{{Key: "NAME", Value: []byte("value-" + name)}}
		return createCtr(t, d, pod, podCfg, cfg), cfg
	}
	// a writes /data.txt and stays up while b and c look for it.
	a, aCfg := mk("a", `echo "name=$NAME"; echo a > /data.txt; cat /data.txt; exec sleep 1000`)
	b, bCfg := mk("b", `echo "name=$NAME"; cat /data.txt`)
	c, cCfg := mk("c", `echo "name=$NAME"; cat /data.txt`)
	startCtr(t, d, a)
	waitLog(t, podCfg, aCfg, []string{"name=value-a", "a"}, nil)
	for _, x := range []struct {
		id  string
		cfg *runtimeapi.ContainerConfig
	}{{b, bCfg}, {c, cCfg}} {
		startCtr(t, d, x.id)
		if st := d.WaitExited(t, x.id); st.ExitCode == 0 {
			t.Errorf("%s: cat /data.txt succeeded; want it missing from this container's filesystem", x.cfg.Metadata.Name)
		}
		lines, _ := framework.ReadCRILog(logFile(podCfg, x.cfg))
		if out := framework.Joined(lines, "stdout"); !slices.Equal(out, []string{"name=value-" + x.cfg.Metadata.Name}) {
			t.Errorf("%s: stdout %q; want only its own name=value-%s", x.cfg.Metadata.Name, out, x.cfg.Metadata.Name)
		}
		if errs := framework.Joined(lines, "stderr"); len(errs) != 1 || !strings.Contains(errs[0], "/data.txt") {
			t.Errorf("%s: stderr %q; want cat's complaint about /data.txt", x.cfg.Metadata.Name, errs)
		}
	}
	// Each has a writable layer of its own; only a's holds /data.txt.
	layers := map[string]bool{}
	for _, id := range []string{a, b, c} {
		sc := storageOf(t, d, id)
		if sc == nil {
			t.Fatalf("no storage container (writable layer) for %s", id)
		}
		layers[sc.Layer] = true
		found := slices.ContainsFunc(d.StorageContainerPaths(id, sc.Layer), func(p string) bool { return exists(p + "/diff/data.txt") })
		if found != (id == a) {
			t.Errorf("container %s: /data.txt in its writable layer's diff = %v; want it only in a's", id, found)
		}
	}
	if len(layers) != 3 {
		t.Errorf("writable layers %v; want three distinct ones", layers)
	}
	if err := d.Runtime.StopContainer(ctxT(t), a, 0); err != nil {
		t.Fatalf("StopContainer(a): %v", err)
	}
	// A new container from the image, after a wrote, still finds no /data.txt.
	later, laterCfg := mk("later", `test -e /data.txt && echo present || echo absent`)
	startCtr(t, d, later)
	d.WaitExited(t, later)
	waitLog(t, podCfg, laterCfg, []string{"absent"}, nil)
	mustStatus(t, d, framework.BusyboxImage, bb)
}
