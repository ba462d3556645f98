package e2e

// Pod sandboxes without a pause container: namespaces pinned under
// <state>/sandboxes/<id>/ns, the pod's hostname, hosts and resolv.conf files
// next to them, a tmpfs for /dev/shm, and the built-in CNI network.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// startPodDaemon starts a daemon whose pods are all removed when the test ends.
func startPodDaemon(t *testing.T, args ...string) *framework.Daemon {
	t.Helper()
	d := startDaemon(t, args...)
	cleanupPods(t, d)
	return d
}

// cleanupPods removes, when the test ends, every pod d still has, and
// detaches anything left mounted under its sandboxes directory.
func cleanupPods(t *testing.T, d *framework.Daemon) {
	t.Cleanup(func() {
		if d.Pid() != 0 {
			pods, err := d.Runtime.ListPodSandbox(ctxT(t), nil)
			if err != nil {
				t.Logf("cleanup: ListPodSandbox: %v", err)
			}
			for _, p := range pods {
				if err := d.Runtime.RemovePodSandbox(ctxT(t), p.Id); err != nil {
					t.Errorf("cleanup: RemovePodSandbox(%s): %v", p.Id, err)
				}
			}
		}
		unmountUnder(t, filepath.Join(d.State, "sandboxes"))
	})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// podConfig is what the kubelet would send for a plain pod named name.
func podConfig(name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "e2e", Uid: randomHex(8)},
		Hostname: name,
		Labels:   map[string]string{"e2e": "yes"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{
					Network: runtimeapi.NamespaceMode_POD,
					Pid:     runtimeapi.NamespaceMode_CONTAINER,
					Ipc:     runtimeapi.NamespaceMode_POD,
				},
			},
		},
	}
}

func nsOptions(cfg *runtimeapi.PodSandboxConfig) *runtimeapi.NamespaceOption {
	return cfg.Linux.SecurityContext.NamespaceOptions
}

// runPod runs a pod that must start.
func runPod(t *testing.T, d *framework.Daemon, cfg *runtimeapi.PodSandboxConfig) string {
	t.Helper()
	id, err := d.Runtime.RunPodSandbox(ctxT(t), cfg, "")
	if err != nil {
		t.Fatalf("RunPodSandbox(%s): %v", cfg.Metadata.Name, err)
	}
	// Whatever the test's outcome, the pod goes, and so do the nat rules and
	// cgroups a faulty daemon might leave on the host.
	t.Cleanup(func() {
		if d.Pid() != 0 {
			_ = d.Runtime.RemovePodSandbox(ctxT(t), id)
		}
		if n := purgeNatRules(t, id); n > 0 {
			t.Logf("cleanup: deleted %d nat rules left by pod %s", n, id)
		}
		if parent := cfg.GetLinux().GetCgroupParent(); parent != "" {
			rmdirCgroups(t, parent)
		}
	})
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("RunPodSandbox returned ID %q; want 64 hex digits", id)
	}
	return id
}

func podStatus(t *testing.T, d *framework.Daemon, id string, verbose bool) *runtimeapi.PodSandboxStatusResponse {
	t.Helper()
	resp, err := d.Runtime.PodSandboxStatus(ctxT(t), id, verbose)
	if err != nil {
		t.Fatalf("PodSandboxStatus(%s): %v", id, err)
	}
	return resp
}

func podIP(t *testing.T, d *framework.Daemon, id string) string {
	t.Helper()
	ip := podStatus(t, d, id, false).GetStatus().GetNetwork().GetIp()
	if !d.Net.Contains(ip) {
		t.Fatalf("pod %s has IP %q; want one from %s", id, ip, d.Net.Subnet)
	}
	return ip
}

func podDir(d *framework.Daemon, id string) string { return filepath.Join(d.State, "sandboxes", id) }
func pin(d *framework.Daemon, id, kind string) string {
	return filepath.Join(podDir(d, id), "ns", kind)
}

// checkGone checks that a removed pod left nothing behind.
func checkGone(t *testing.T, d *framework.Daemon, id, ip string) {
	t.Helper()
	if _, err := d.Runtime.PodSandboxStatus(ctxT(t), id, false); status.Code(err) != codes.NotFound {
		t.Errorf("PodSandboxStatus after remove = %v; want NotFound", err)
	}
	if exists(podDir(d, id)) {
		t.Errorf("%s still exists after remove", podDir(d, id))
	}
	if ms := mountsUnder(t, podDir(d, id)); len(ms) > 0 {
		t.Errorf("mounts left after remove: %v", ms)
	}
	if ip != "" && exists(leaseFile(d.Root, ip)) {
		t.Errorf("lease for %s left after remove", ip)
	}
	if rules := linesWith(natRules(t), id); len(rules) > 0 {
		t.Errorf("nat rules naming the pod left after remove:\n%s", strings.Join(rules, "\n"))
	}
}

func TestPodSandboxLifecycle(t *testing.T) {
	t.Parallel()
	d := startPodDaemon(t)
	ctx := ctxT(t)

	cfg := podConfig("lifecycle")
	cfg.LogDirectory = t.TempDir()
	cfg.Labels = map[string]string{"app": "web", "tier": "front"}
	cfg.Annotations = map[string]string{"e2e/note": "hello"}
	cfg.DnsConfig = &runtimeapi.DNSConfig{
		Servers:  []string{"10.96.0.10", "10.96.0.11"},
		Searches: []string{"e2e.svc.cluster.local", "svc.cluster.local"},
		Options:  []string{"ndots:5", "edns0"},
	}
	before := time.Now()
	id := runPod(t, d, cfg)
	after := time.Now()

	resp := podStatus(t, d, id, true)
	st := resp.Status
	if st.Id != id || st.Metadata.GetName() != "lifecycle" || st.Metadata.GetNamespace() != "e2e" || st.Metadata.GetUid() != cfg.Metadata.Uid || st.Metadata.GetAttempt() != 0 {
		t.Errorf("status id/metadata = %s %v; want %s %v", st.Id, st.Metadata, id, cfg.Metadata)
	}
	if st.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("state = %v; want SANDBOX_READY", st.State)
	}
	if st.CreatedAt < before.UnixNano() || st.CreatedAt > after.UnixNano() {
		t.Errorf("CreatedAt = %v; want between %v and %v", time.Unix(0, st.CreatedAt), before, after)
	}
	if got := st.GetLinux().GetNamespaces().GetOptions(); got.GetNetwork() != runtimeapi.NamespaceMode_POD || got.GetIpc() != runtimeapi.NamespaceMode_POD || got.GetPid() != runtimeapi.NamespaceMode_CONTAINER {
		t.Errorf("namespace options = %v; want network POD, pid CONTAINER, ipc POD", got)
	}
	if !sameMap(st.Labels, cfg.Labels) || !sameMap(st.Annotations, cfg.Annotations) {
		t.Errorf("labels %v annotations %v; want %v %v", st.Labels, st.Annotations, cfg.Labels, cfg.Annotations)
	}
	var info map[string]any
	if err := json.Unmarshal([]byte(resp.Info["info"]), &info); err != nil {
		t.Errorf("verbose info[\"info\"] is not a JSON object: %v: %q", err, resp.Info["info"])
	} else if !strings.Contains(resp.Info["info"], pin(d, id, "net")) {
		t.Errorf("verbose info does not name the netns %s: %s", pin(d, id, "net"), resp.Info["info"])
	}
	ip := podIP(t, d, id)

	// The namespaces are new ones, pinned by nsfs bind mounts.
	for _, kind := range []string{"net", "ipc", "uts"} {
		p := pin(d, id, kind)
		if fstype := mountAt(t, p); fstype != "nsfs" {
			t.Errorf("%s: mounted fs %q; want an nsfs pin", p, fstype)
			continue
		}
		if nsInode(t, p) == nsInode(t, "/proc/self/ns/"+kind) {
			t.Errorf("%s pins the host's %s namespace", p, kind)
		}
	}
	if fstype := mountAt(t, filepath.Join(podDir(d, id), "shm")); fstype != "tmpfs" {
		t.Errorf("shm: mounted fs %q; want tmpfs", fstype)
	}

	// The pod's files.
	if b, _ := os.ReadFile(filepath.Join(podDir(d, id), "hostname")); string(b) != "lifecycle\n" {
		t.Errorf("hostname file = %q; want \"lifecycle\\n\"", b)
	}
	if got := nsenter(t, "uts", pin(d, id, "uts"), "hostname"); got != "lifecycle" {
		t.Errorf("hostname in the pod's UTS namespace = %q; want lifecycle", got)
	}
	resolv := strings.Split(readTrimmed(t, filepath.Join(podDir(d, id), "resolv.conf")), "\n")
	for _, want := range []string{"nameserver 10.96.0.10", "nameserver 10.96.0.11", "search e2e.svc.cluster.local svc.cluster.local", "options ndots:5 edns0"} {
		if !slices.Contains(resolv, want) {
			t.Errorf("resolv.conf lacks the line %q:\n%s", want, strings.Join(resolv, "\n"))
		}
	}
	hosts := readTrimmed(t, filepath.Join(podDir(d, id), "hosts"))
	if !hasHostsLine(hosts, "127.0.0.1", "localhost") || !hasHostsLine(hosts, ip, "lifecycle") {
		t.Errorf("hosts file lacks localhost or %s lifecycle:\n%s", ip, hosts)
	}
	veth, vethName, master := hostVeth(t, pin(d, id, "net"))
	if master != d.Net.Bridge {
		t.Errorf("host end %s of the pod's eth0 is attached to %q; want %s", vethName, master, d.Net.Bridge)
	}
	if !exists(leaseFile(d.Root, ip)) {
		t.Errorf("no lease file for %s", ip)
	}
	chains := natChains(t, id)

	// Stop tears the network down and is idempotent.
	for i := 0; i < 2; i++ {
		if err := d.Runtime.StopPodSandbox(ctx, id); err != nil {
			t.Fatalf("StopPodSandbox #%d: %v", i+1, err)
		}
	}
	if st := podStatus(t, d, id, false).Status; st.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("state after stop = %v; want SANDBOX_NOTREADY", st.State)
	}
	if linkExists(veth) {
		t.Errorf("host veth %s still exists after stop", vethName)
	}
	if exists(leaseFile(d.Root, ip)) {
		t.Errorf("lease for %s kept after stop", ip)
	}
	if left := linesWith(natRules(t), append(chains, id)...); len(left) > 0 {
		t.Errorf("nat rules of the pod left after stop:\n%s", strings.Join(left, "\n"))
	}

	// Remove is idempotent too, and so is a stop after it.
	for i := 0; i < 2; i++ {
		if err := d.Runtime.RemovePodSandbox(ctx, id); err != nil {
			t.Fatalf("RemovePodSandbox #%d: %v", i+1, err)
		}
	}
	if err := d.Runtime.StopPodSandbox(ctx, id); err != nil {
		t.Errorf("StopPodSandbox after remove: %v; want success", err)
	}
	checkGone(t, d, id, ip)

	t.Run("remove a ready pod", func(t *testing.T) {
		id := runPod(t, d, podConfig("ready-remove"))
		ip := podIP(t, d, id)
		veth, vethName, _ := hostVeth(t, pin(d, id, "net"))
		if err := d.Runtime.RemovePodSandbox(ctx, id); err != nil {
			t.Fatal(err)
		}
		checkGone(t, d, id, ip)
		if linkExists(veth) {
			t.Errorf("host veth %s still exists after removing a ready pod", vethName)
		}
	})
	t.Run("no dns config copies the host's resolv.conf", func(t *testing.T) {
		id := runPod(t, d, podConfig("host-dns"))
		host, _ := os.ReadFile("/etc/resolv.conf")
		if got, _ := os.ReadFile(filepath.Join(podDir(d, id), "resolv.conf")); string(got) != string(host) {
			t.Errorf("resolv.conf = %q; want the host's %q", got, host)
		}
	})
	t.Run("unknown id", func(t *testing.T) {
		unknown := strings.Repeat("ab", 32)
		if _, err := d.Runtime.PodSandboxStatus(ctx, unknown, false); status.Code(err) != codes.NotFound {
			t.Errorf("PodSandboxStatus(unknown) = %v; want NotFound", err)
		}
		if err := d.Runtime.StopPodSandbox(ctx, unknown); err != nil {
			t.Errorf("StopPodSandbox(unknown) = %v; want success", err)
		}
		if err := d.Runtime.RemovePodSandbox(ctx, unknown); err != nil {
			t.Errorf("RemovePodSandbox(unknown) = %v; want success", err)
		}
	})
}

func sameMap(got, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			return false
		}
	}
	return true
}

// hasHostsLine reports whether hosts maps ip to name.
func hasHostsLine(hosts, ip, name string) bool {
	for _, l := range strings.Split(hosts, "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && f[0] == ip && slices.Contains(f[1:], name) {
			return true
		}
	}
	return false
}

func listPods(t *testing.T, d *framework.Daemon, f *runtimeapi.PodSandboxFilter) []*runtimeapi.PodSandbox {
	t.Helper()
	pods, err := d.Runtime.ListPodSandbox(ctxT(t), f)
	if err != nil {
		t.Fatalf("ListPodSandbox(%v): %v", f, err)
	}
	return pods
}

func listIDs(t *testing.T, d *framework.Daemon, f *runtimeapi.PodSandboxFilter) []string {
	t.Helper()
	out := []string{}
	for _, p := range listPods(t, d, f) {
		out = append(out, p.Id)
	}
	slices.Sort(out)
	return out
}

func sorted(s ...string) []string {
	out := append([]string{}, s...)
	slices.Sort(out)
	return out
}

func TestPodSandboxListFilters(t *testing.T) {
	t.Parallel()
	d := startPodDaemon(t)
	mk := func(name string, labels map[string]string) string {
		cfg := podConfig(name)
		cfg.Labels = labels
		cfg.Annotations = map[string]string{"pod": name}
		return runPod(t, d, cfg)
	}
	a := mk("a", map[string]string{"app": "web", "tier": "front"})
	b := mk("b", map[string]string{"app": "web", "tier": "back"})
	c := mk("c", map[string]string{"app": "db"})
	if err := d.Runtime.StopPodSandbox(ctxT(t), c); err != nil {
		t.Fatal(err)
	}

	pods, err := d.Runtime.ListPodSandbox(ctxT(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		want := map[string]runtimeapi.PodSandboxState{a: runtimeapi.PodSandboxState_SANDBOX_READY, b: runtimeapi.PodSandboxState_SANDBOX_READY, c: runtimeapi.PodSandboxState_SANDBOX_NOTREADY}[p.Id]
		if p.State != want || p.Metadata.GetName() == "" || p.CreatedAt == 0 || p.Annotations["pod"] != p.Metadata.GetName() || p.Labels["app"] == "" {
			t.Errorf("listed pod %+v; want state %v with metadata, labels, annotations and CreatedAt", p, want)
		}
	}
	prefix := a[:12]
	for _, other := range []string{b, c} {
		for strings.HasPrefix(other, prefix) {
			prefix = a[:len(prefix)+1]
		}
	}
	ready, notReady := runtimeapi.PodSandboxState_SANDBOX_READY, runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	for _, tc := range []struct {
		name   string
		filter *runtimeapi.PodSandboxFilter
		want   []string
	}{
		{"none", nil, sorted(a, b, c)},
		{"empty", &runtimeapi.PodSandboxFilter{}, sorted(a, b, c)},
		{"full id", &runtimeapi.PodSandboxFilter{Id: b}, []string{b}},
		{"id prefix", &runtimeapi.PodSandboxFilter{Id: prefix}, []string{a}},
		{"unknown id", &runtimeapi.PodSandboxFilter{Id: strings.Repeat("0", 64)}, []string{}},
		{"ready", &runtimeapi.PodSandboxFilter{State: &runtimeapi.PodSandboxStateValue{State: ready}}, sorted(a, b)},
		{"not ready", &runtimeapi.PodSandboxFilter{State: &runtimeapi.PodSandboxStateValue{State: notReady}}, []string{c}},
		{"one label", &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "web"}}, sorted(a, b)},
		{"two labels", &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "web", "tier": "back"}}, []string{b}},
		{"label mismatch", &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "web", "tier": "none"}}, []string{}},
		{"empty label value", &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"tier": ""}}, []string{}},
		{"state and label", &runtimeapi.PodSandboxFilter{State: &runtimeapi.PodSandboxStateValue{State: notReady}, LabelSelector: map[string]string{"app": "web"}}, []string{}},
		{"id and state", &runtimeapi.PodSandboxFilter{Id: c, State: &runtimeapi.PodSandboxStateValue{State: ready}}, []string{}},
	} {
		if got := listIDs(t, d, tc.filter); !slices.Equal(got, tc.want) {
			t.Errorf("ListPodSandbox(%s) = %v; want %v", tc.name, got, tc.want)
		}
	}
}

func TestPodSandboxDuplicateMetadata(t *testing.T) {
	t.Parallel()
	d := startPodDaemon(t)
	cfg := podConfig("dup")
	id := runPod(t, d, cfg)
	ip := podIP(t, d, id)
	again := func(when string) {
		t.Helper()
		other, err := d.Runtime.RunPodSandbox(ctxT(t), cfg, "")
		if status.Code(err) != codes.AlreadyExists || !strings.Contains(err.Error(), id) {
			t.Errorf("second RunPodSandbox with the same metadata %s = %q, %v; want AlreadyExists naming %s", when, other, err, id)
		}
	}
	again("while the first is ready")
	// The refused duplicate disturbed nothing.
	if got := listIDs(t, d, nil); !slices.Equal(got, []string{id}) {
		t.Errorf("pods after a refused duplicate = %v; want only %s", got, id)
	}
	if st := podStatus(t, d, id, false).Status; st.State != runtimeapi.PodSandboxState_SANDBOX_READY || st.GetNetwork().GetIp() != ip {
		t.Errorf("first pod after a refused duplicate: state %v IP %q; want READY, %s", st.State, st.GetNetwork().GetIp(), ip)
	}
	if fstype := mountAt(t, pin(d, id, "net")); fstype != "nsfs" || !exists(leaseFile(d.Root, ip)) {
		t.Errorf("first pod's netns pin (%q) or lease lost after a refused duplicate", fstype)
	}
	if err := d.Runtime.StopPodSandbox(ctxT(t), id); err != nil {
		t.Fatal(err)
	}
	again("while the first is stopped")

	next := proto.Clone(cfg).(*runtimeapi.PodSandboxConfig)
	next.Metadata.Attempt = 1
	if id2 := runPod(t, d, next); id2 == id {
		t.Errorf("attempt 1 got the ID of attempt 0")
	}
	if err := d.Runtime.RemovePodSandbox(ctxT(t), id); err != nil {
		t.Fatal(err)
	}
	runPod(t, d, cfg) // the name is free again once the first pod is gone
}

// TestPodSandboxDefaultHostname: a pod that names no hostname gets the host's,
// as with containerd and CRI-O, whatever its name's length (critest's pods
// have names longer than a hostname may be).
func TestPodSandboxDefaultHostname(t *testing.T) {
	t.Parallel()
	d := startPodDaemon(t)
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	cfg := podConfig("a-pod-name-" + strings.Repeat("x", 70))
	cfg.Hostname = ""
	id := runPod(t, d, cfg)
	if b, _ := os.ReadFile(filepath.Join(podDir(d, id), "hostname")); string(b) != host+"\n" {
		t.Errorf("hostname file = %q; want the host's %q", b, host)
	}
	if got := nsenter(t, "uts", pin(d, id, "uts"), "hostname"); got != host {
		t.Errorf("hostname in the pod's UTS namespace = %q; want the host's %q", got, host)
	}
}
