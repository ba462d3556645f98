package e2e

// What pods leave behind: across a daemon restart (their state, IPs,
// namespaces and init must stay), when stopped (no process), in the cgroup
// tree, and after many run/stop/remove cycles (nothing at all).

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

func TestPodSandboxSurvivesRestart(t *testing.T) {
	t.Parallel()
	d := startPodDaemon(t)
	hostPort := freeHostPort(t)
	cfgA := podConfig("restart-a")
	cfgA.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 8080, HostPort: hostPort}}
	nsOptions(cfgA).Pid = runtimeapi.NamespaceMode_POD
	a, b := runPod(t, d, cfgA), runPod(t, d, podConfig("restart-b"))
	pidNS := nsInode(t, pin(d, a, "pid"))
	if err := d.Runtime.StopPodSandbox(ctxT(t), b); err != nil {
		t.Fatal(err)
	}
	ipA, ipB := podIP(t, d, a), podStatus(t, d, b, false).Status.GetNetwork().GetIp()
	listenInNetns(t, pin(d, a, "net"), ":8080", "restart-a")
	mustReach(t, net.JoinHostPort(ipA, "8080"), "restart-a")
	states := func() map[string]runtimeapi.PodSandboxState {
		pods, err := d.Runtime.ListPodSandbox(ctxT(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]runtimeapi.PodSandboxState{}
		for _, p := range pods {
			out[p.Id] = p.State
		}
		return out
	}
	before := states()

	if err := d.Stop(syscall.SIGTERM, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// A daemon going away takes no pod with it.
	if fstype := mountAt(t, pin(d, a, "net")); fstype != "nsfs" {
		t.Fatalf("netns pin of a ready pod: fs %q after the daemon stopped; want nsfs", fstype)
	}
	mustReach(t, net.JoinHostPort(ipA, "8080"), "restart-a")
	if pids := pidsInNamespace(pidNS); len(pids) != 1 {
		t.Errorf("processes in pod a's PID namespace with the daemon stopped: %v; want its init", pids)
	}
	if err := d.Start(); err != nil {
		t.Fatalf("restart: %v\n%s", err, d.Logs())
	}

	after := states()
	if len(after) != len(before) || after[a] != before[a] || after[b] != before[b] {
		t.Errorf("pods after restart = %v; want %v", after, before)
	}
	if got := podStatus(t, d, a, false).Status; got.State != runtimeapi.PodSandboxState_SANDBOX_READY || got.GetNetwork().GetIp() != ipA {
		t.Errorf("pod a after restart: state %v IP %q; want READY %s", got.State, got.GetNetwork().GetIp(), ipA)
	}
	if got := podStatus(t, d, b, false).Status.GetNetwork().GetIp(); got != ipB {
		t.Errorf("pod b's IP after restart = %q; want %q as before", got, ipB)
	}
	mustReach(t, net.JoinHostPort(hostIP(t), strconv.Itoa(int(hostPort))), "restart-a")
	if _, err := d.Runtime.RunPodSandbox(ctxT(t), cfgA, ""); status.Code(err) != codes.AlreadyExists {
		t.Errorf("RunPodSandbox with pod a's metadata after restart = %v; want AlreadyExists", err)
	}

	// The restarted daemon still tears down what its predecessor set up.
	if err := d.Runtime.StopPodSandbox(ctxT(t), a); err != nil {
		t.Fatal(err)
	}
	if exists(leaseFile(d.Root, ipA)) {
		t.Errorf("lease of %s kept after stopping the pod on a restarted daemon", ipA)
	}
	if !eventually(10*time.Second, func() bool { return len(pidsInNamespace(pidNS)) == 0 }) {
		t.Errorf("pod a's init %v survived stopping the pod on a restarted daemon", pidsInNamespace(pidNS))
	}
	for _, id := range []string{a, b} {
		if err := d.Runtime.RemovePodSandbox(ctxT(t), id); err != nil {
			t.Fatal(err)
		}
	}
	checkGone(t, d, a, ipA)
	checkGone(t, d, b, "")
}

// pidsInNamespace lists the host PIDs of the processes in the PID namespace
// whose inode is ino.
func pidsInNamespace(ino uint64) []int {
	var out []int
	dirs, _ := os.ReadDir("/proc")
	for _, e := range dirs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+e.Name()+"/ns/pid", &st) == nil && st.Ino == ino {
			out = append(out, pid)
		}
	}
	return out
}

func TestPodSandboxPidNamespace(t *testing.T) {
	t.Parallel()
	d := startPodDaemon(t)

	t.Run("shared by the pod", func(t *testing.T) {
		cfg := podConfig("pidns")
		nsOptions(cfg).Pid = runtimeapi.NamespaceMode_POD
		id := runPod(t, d, cfg)
		if got := podStatus(t, d, id, false).Status.GetLinux().GetNamespaces().GetOptions().GetPid(); got != runtimeapi.NamespaceMode_POD {
			t.Errorf("status pid mode = %v; want POD", got)
		}
		p := pin(d, id, "pid")
		if fstype := mountAt(t, p); fstype != "nsfs" {
			t.Fatalf("%s: fs %q; want an nsfs pin", p, fstype)
		}
		ino := nsInode(t, p)
		if ino == nsInode(t, "/proc/self/ns/pid") {
			t.Fatal("the pod's pid pin is the host's PID namespace")
		}
		// A PID namespace lives only as long as its init does.
		if pids := pidsInNamespace(ino); len(pids) != 1 {
			t.Errorf("processes in the pod's PID namespace: %v; want just its init", pids)
		}
		if err := d.Runtime.StopPodSandbox(ctxT(t), id); err != nil {
			t.Fatal(err)
		}
		if !eventually(10*time.Second, func() bool { return len(pidsInNamespace(ino)) == 0 }) {
			t.Errorf("processes %v still run in the PID namespace of a stopped pod", pidsInNamespace(ino))
		}
	})
	t.Run("host", func(t *testing.T) {
		cfg := podConfig("hostpid")
		nsOptions(cfg).Pid = runtimeapi.NamespaceMode_NODE
		id := runPod(t, d, cfg)
		if got := podStatus(t, d, id, false).Status.GetLinux().GetNamespaces().GetOptions().GetPid(); got != runtimeapi.NamespaceMode_NODE {
			t.Errorf("status pid mode = %v; want NODE", got)
		}
		if exists(pin(d, id, "pid")) {
			t.Error("a host-PID pod has a pid pin")
		}
	})
	t.Run("per container", func(t *testing.T) {
		if id := runPod(t, d, podConfig("ctrpid")); exists(pin(d, id, "pid")) {
			t.Error("a pod whose containers each get a PID namespace has a pid pin")
		}
	})
}

// startSlowNetworkDaemon starts a daemon whose pod network is the built-in
// bridge behind a plugin that takes two seconds over each ADD, so that a
// RunPodSandbox can be given up on while the daemon is still at work.
func startSlowNetworkDaemon(t *testing.T) *framework.Daemon {
	t.Helper()
	bin := t.TempDir()
	script := "#!/bin/sh\n[ \"$CNI_COMMAND\" = ADD ] && sleep 2\nexec /usr/lib/cni/bridge \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "slowbridge"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	d := framework.NewDaemon(t, framework.Options{Binary: binaryFor(t), Args: []string{"--registries-conf", registriesConf, "--cni-bin-dir", bin + ":/usr/lib/cni"}})
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"slow","plugins":[{"type":"slowbridge","bridge":%q,"isGateway":true,`+
		`"ipam":{"type":"host-local","ranges":[[{"subnet":%q}]],"dataDir":%q}}]}`, d.Net.Bridge, d.Net.Subnet, filepath.Join(d.Root, "cni", "networks"))
	if err := os.MkdirAll(d.CNIConf, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.CNIConf, "10-slow.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatalf("start daemon: %v\n%s", err, d.Logs())
	}
	cleanupPods(t, d)
	return d
}

// TestPodSandboxRunRetry: the kubelet gives up on a slow RunPodSandbox and
// asks again with the same metadata; it must get the pod the daemon went on
// making, and there must be one pod, not two.
func TestPodSandboxRunRetry(t *testing.T) {
	t.Parallel()
	raceBuild(t)
	d := startSlowNetworkDaemon(t)
	cfg := podConfig("retry")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if id, err := d.Runtime.RunPodSandbox(ctx, cfg, ""); err == nil {
		t.Fatalf("RunPodSandbox through a 2s CNI ADD with a 0.5s deadline succeeded (%s); the test cannot give up on it", id)
	}
	id := runPod(t, d, cfg)
	if st := podStatus(t, d, id, false).Status; st.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("the retried pod is %v; want READY", st.State)
	}
	podIP(t, d, id)
	if got := listIDs(t, d, nil); !slices.Equal(got, []string{id}) {
		t.Errorf("pods after a given-up run and its retry = %v; want just %s", got, id)
	}
	if got := leases(t, d.Root); len(got) != 1 {
		t.Errorf("IP leases after a given-up run and its retry = %v; want one", got)
	}
	if _, err := d.Runtime.RunPodSandbox(ctxT(t), cfg, ""); status.Code(err) != codes.AlreadyExists {
		t.Errorf("a third RunPodSandbox, after the pod was returned = %v; want AlreadyExists", err)
	}
}

// cgroupHierarchies lists the mounted cgroup hierarchies (v1 controllers,
// named ones and the unified cgroup2).
func cgroupHierarchies(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, m := range mountsUnder(t, "/sys/fs/cgroup") {
		if m.FSType == "cgroup" || m.FSType == "cgroup2" {
			out = append(out, m.Point)
		}
	}
	return out
}

// cgroupsNamed lists the directories <hierarchy>/<rel> that exist.
func cgroupsNamed(t *testing.T, rel string) []string {
	t.Helper()
	var out []string
	for _, h := range cgroupHierarchies(t) {
		if exists(filepath.Join(h, rel)) {
			out = append(out, filepath.Join(h, rel))
		}
	}
	return out
}

// rmdirCgroups removes the cgroup directories <hierarchy>/<rel> (children
// first), ignoring those that are absent or busy.
func rmdirCgroups(t *testing.T, rels ...string) {
	for _, rel := range rels {
		for _, p := range cgroupsNamed(t, rel) {
			_ = os.Remove(p)
		}
	}
}

func TestPodSandboxCgroupParent(t *testing.T) {
	t.Parallel()
	d := startPodDaemon(t)
	cgroupTop := newCgroupTop()
	topExisted := len(cgroupsNamed(t, cgroupTop)) > 0
	memory := "/sys/fs/cgroup/memory"
	if framework.CgroupV2() { // make test-vm
		memory = "/sys/fs/cgroup"
	}

	t.Run("created when missing, removed with the pod", func(t *testing.T) {
		cfg := podConfig("cgroup")
		rel := filepath.Join(cgroupTop, "pod"+cfg.Metadata.Uid)
		t.Cleanup(func() { rmdirCgroups(t, rel, cgroupTop) })
		cfg.Linux.CgroupParent = "/" + rel
		id := runPod(t, d, cfg)
		if !exists(filepath.Join(memory, rel)) {
			t.Errorf("%s does not exist after RunPodSandbox; created: %v", filepath.Join(memory, rel), cgroupsNamed(t, rel))
		}
		if err := d.Runtime.RemovePodSandbox(ctxT(t), id); err != nil {
			t.Fatal(err)
		}
		if left := cgroupsNamed(t, rel); len(left) > 0 {
			t.Errorf("pod cgroups left after remove: %v", left)
		}
		if left := cgroupsNamed(t, cgroupTop); !topExisted && len(left) > 0 {
			t.Errorf("the daemon created %v for the pod and left them after remove", left)
		}
	})

	t.Run("an existing parent is kept", func(t *testing.T) {
		cfg := podConfig("cgroup-kept")
		rel := filepath.Join(cgroupTop, "pod"+cfg.Metadata.Uid)
		t.Cleanup(func() { rmdirCgroups(t, rel, cgroupTop) })
		var made []string
		for _, h := range cgroupHierarchies(t) {
			if err := os.MkdirAll(filepath.Join(h, rel), 0o755); err != nil {
				t.Fatalf("create %s: %v", filepath.Join(h, rel), err)
			}
			made = append(made, filepath.Join(h, rel))
		}
		cfg.Linux.CgroupParent = "/" + rel
		id := runPod(t, d, cfg)
		if err := d.Runtime.RemovePodSandbox(ctxT(t), id); err != nil {
			t.Fatal(err)
		}
		for _, p := range made {
			if !exists(p) {
				t.Errorf("the daemon removed %s, which it did not create", p)
			}
		}
	})
}

// hostCounts is what pods may leave on the host, counted.
type hostCounts struct {
	StateMounts, NsfsMounts, Leases, DaemonFDs int
}

func countHost(t *testing.T, d *framework.Daemon) hostCounts {
	t.Helper()
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(d.Pid()) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	return hostCounts{
		StateMounts: len(mountsUnder(t, d.State)),
		NsfsMounts:  countNsfsMounts(t, d.Dir),
		Leases:      len(leases(t, d.Root)),
		DaemonFDs:   len(fds),
	}
}

// podTrace is what one live pod had on the host, to look for afterwards.
type podTrace struct {
	id, veth, cgroup string
	vethIndex        int
	chains           []string
}

func TestPodSandboxLeaks(t *testing.T) {
	t.Parallel()
	d := startPodDaemon(t)
	cycles := 50
	if testing.Short() {
		cycles = 10
	}
	var traces []podTrace
	cgroupTop := newCgroupTop()
	t.Cleanup(func() {
		for _, tr := range traces {
			rmdirCgroups(t, tr.cgroup)
		}
		rmdirCgroups(t, cgroupTop)
	})
	cycle := func(i int, check func(podTrace)) {
		cfg := podConfig("leak-" + strconv.Itoa(i))
		rel := filepath.Join(cgroupTop, "pod"+cfg.Metadata.Uid)
		cfg.Linux.CgroupParent = "/" + rel
		cfg.Linux.Sysctls = map[string]string{"net.core.somaxconn": "1000", "kernel.shm_rmid_forced": "1"}
		if i%10 == 0 {
			cfg.PortMappings = []*runtimeapi.PortMapping{
				{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: freeHostPort(t)},
				{Protocol: runtimeapi.Protocol_UDP, ContainerPort: 53, HostPort: freeHostPort(t)},
			}
		}
		id := runPod(t, d, cfg)
		podIP(t, d, id)
		tr := podTrace{id: id, cgroup: rel, chains: natChains(t, id)}
		tr.vethIndex, tr.veth, _ = hostVeth(t, pin(d, id, "net"))
		traces = append(traces, tr)
		if check != nil {
			check(tr)
		}
		if err := d.Runtime.StopPodSandbox(ctxT(t), id); err != nil {
			t.Fatalf("cycle %d: StopPodSandbox: %v", i, err)
		}
		if err := d.Runtime.RemovePodSandbox(ctxT(t), id); err != nil {
			t.Fatalf("cycle %d: RemovePodSandbox: %v", i, err)
		}
	}

	// One cycle first, so that one-time set-up (the bridge, the daemon's own
	// directories and mounts) is not counted as a leak.
	cycle(-1, nil)
	before := countHost(t, d)
	for i := range cycles {
		var check func(podTrace)
		if i == 0 { // the measurements do see a live pod
			check = func(tr podTrace) {
				now := countHost(t, d)
				if now.NsfsMounts < before.NsfsMounts+3 || now.StateMounts < before.StateMounts+4 || now.Leases != before.Leases+1 {
					t.Errorf("host with one live pod = %+v; before %+v: want 3 more nsfs and 4 more state mounts, and a lease", now, before)
				}
				if !slices.ContainsFunc(tr.chains, func(c string) bool { return strings.HasPrefix(c, "CNI-DN-") }) {
					t.Errorf("the live pod's nat rules jump to %v; want a CNI-DN- chain among them", tr.chains)
				}
				if !exists(filepath.Join("/sys/fs/cgroup/memory", tr.cgroup)) {
					t.Errorf("the live pod has no memory cgroup %s", tr.cgroup)
				}
			}
		}
		cycle(i, check)
	}
	after := countHost(t, d)

	if after.DaemonFDs > before.DaemonFDs+2 {
		t.Errorf("the daemon's open files grew from %d to %d over %d pods", before.DaemonFDs, after.DaemonFDs, cycles)
	}
	after.DaemonFDs = before.DaemonFDs
	if after != before {
		t.Errorf("after %d run/stop/remove cycles the host has %+v; before %+v", cycles, after, before)
	}
	rules := natRules(t)
	leftVeths, leftRules, leftCgroups := []string{}, []string{}, []string{}
	for _, tr := range traces {
		if linkExists(tr.vethIndex) {
			leftVeths = append(leftVeths, tr.veth)
		}
		leftRules = append(leftRules, linesWith(rules, append(tr.chains, tr.id)...)...)
		leftCgroups = append(leftCgroups, cgroupsNamed(t, tr.cgroup)...)
	}
	if len(leftVeths)+len(leftRules)+len(leftCgroups) > 0 {
		t.Errorf("removed pods left %d host veths %v, %d cgroups %v and %d nat rules:\n%s",
			len(leftVeths), leftVeths, len(leftCgroups), leftCgroups, len(leftRules), strings.Join(leftRules, "\n"))
	}
	if entries, _ := os.ReadDir(filepath.Join(d.State, "sandboxes")); len(entries) > 0 {
		t.Errorf("%d directories left in %s", len(entries), filepath.Join(d.State, "sandboxes"))
	}
	if pods := listIDs(t, d, nil); len(pods) > 0 {
		t.Errorf("ListPodSandbox after removing every pod = %v", pods)
	}
}
