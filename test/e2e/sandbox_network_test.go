package e2e

// Pod networking on the built-in CNI network (the daemon's bridge and subnet, portmap),
// host namespaces, sysctls, and pod stats.

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

func TestPodSandboxNetwork(t *testing.T) {
	t.Parallel()
	d := startPodDaemon(t)

	a, b := runPod(t, d, podConfig("net-a")), runPod(t, d, podConfig("net-b"))
	ipA, ipB := podIP(t, d, a), podIP(t, d, b)
	prefixLen := d.Net.Subnet[strings.LastIndexByte(d.Net.Subnet, '/'):] // the daemon's subnet's
	if ipA == ipB {
		t.Fatalf("two pods share the IP %s", ipA)
	}
	for _, p := range []struct{ id, ip string }{{a, ipA}, {b, ipB}} {
		if got := nsenter(t, "net", pin(d, p.id, "net"), "ip", "-o", "-4", "addr", "show", "dev", "eth0"); !strings.Contains(got, " "+p.ip+prefixLen+" ") {
			t.Errorf("pod %s: eth0 in its netns = %q; want %s%s", p.id, got, p.ip, prefixLen)
		}
		if got := nsenter(t, "net", pin(d, p.id, "net"), "ip", "-o", "link", "show", "dev", "lo"); !strings.Contains(got, "UP") {
			t.Errorf("pod %s: loopback is not up: %q", p.id, got)
		}
		if !exists(leaseFile(d.Root, p.ip)) {
			t.Errorf("no lease file %s", leaseFile(d.Root, p.ip))
		}
	}
	vethA, nameA, masterA := hostVeth(t, pin(d, a, "net"))
	vethB, nameB, masterB := hostVeth(t, pin(d, b, "net"))
	if masterA != d.Net.Bridge || masterB != d.Net.Bridge || vethA == vethB {
		t.Errorf("host ends of the pods' eth0: %s on %q, %s on %q; want two ports of %s", nameA, masterA, nameB, masterB, d.Net.Bridge)
	}

	// Each pod answers from its own namespace, at its own address.
	listenInNetns(t, pin(d, a, "net"), ":8080", "pod-a")
	listenInNetns(t, pin(d, b, "net"), ":8080", "pod-b")
	mustReach(t, net.JoinHostPort(ipA, "8080"), "pod-a")
	mustReach(t, net.JoinHostPort(ipB, "8080"), "pod-b")
	if got, err := talk("127.0.0.1:8080", 0); err == nil && strings.HasPrefix(got, "pod-") {
		t.Errorf("the listener in a pod's netns answers on the host's 127.0.0.1:8080")
	}

	if err := d.Runtime.StopPodSandbox(ctxT(t), a); err != nil {
		t.Fatal(err)
	}
	mustNotReach(t, net.JoinHostPort(ipA, "8080"))
	mustReach(t, net.JoinHostPort(ipB, "8080"), "pod-b")
	if linkExists(vethA) || !linkExists(vethB) {
		t.Errorf("after stopping pod a: its veth %s exists: %v, pod b's %s exists: %v; want only b's", nameA, linkExists(vethA), nameB, linkExists(vethB))
	}
	if got := leases(t, d.Root); !slices.Equal(got, []string{ipB}) {
		t.Errorf("leases after stopping pod a = %v; want only %s", got, ipB)
	}
}

func TestPodSandboxHostPort(t *testing.T) {
	t.Parallel()
	d := startPodDaemon(t)

	hostPort, localPort := freeHostPort(t), freeHostPort(t)
	for localPort == hostPort {
		localPort = freeHostPort(t)
	}
	cfg := podConfig("hostport")
	cfg.PortMappings = []*runtimeapi.PortMapping{
		{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 8080, HostPort: hostPort},
		{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 8080, HostPort: localPort, HostIp: "127.0.0.1"},
	}
	id := runPod(t, d, cfg)
	ip := podIP(t, d, id)
	listenInNetns(t, pin(d, id, "net"), ":8080", "mapped")

	chains := natChains(t, id)
	if !slices.ContainsFunc(chains, func(c string) bool { return strings.HasPrefix(c, "CNI-DN-") }) {
		t.Errorf("no nat rule naming the pod %s jumps to a CNI-DN- chain while it has a port mapping; chains %v", id, chains)
	}
	port := strconv.Itoa(int(hostPort))
	mustReach(t, net.JoinHostPort(ip, "8080"), "mapped")
	mustReach(t, net.JoinHostPort(hostIP(t), port), "mapped")
	mustReach(t, net.JoinHostPort(d.Net.Gateway, port), "mapped")
	mustReach(t, net.JoinHostPort("127.0.0.1", port), "mapped")
	// A mapping bound to one host address answers there only.
	local := strconv.Itoa(int(localPort))
	mustReach(t, net.JoinHostPort("127.0.0.1", local), "mapped")
	mustNotReach(t, net.JoinHostPort(hostIP(t), local))

	if err := d.Runtime.StopPodSandbox(ctxT(t), id); err != nil {
		t.Fatal(err)
	}
	mustNotReach(t, net.JoinHostPort(hostIP(t), port))
	mustNotReach(t, net.JoinHostPort("127.0.0.1", local))
	if left := linesWith(natRules(t), append(chains, id, ip+":8080")...); len(left) > 0 {
		t.Errorf("nat rules of the pod left after stop:\n%s", strings.Join(left, "\n"))
	}
}

func TestPodSandboxHostNamespaces(t *testing.T) {
	t.Parallel()
	d := startPodDaemon(t)
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("host network", func(t *testing.T) {
		leasesBefore := len(leases(t, d.Root))
		cfg := podConfig("hostnet")
		cfg.Hostname = "" // as the kubelet may send it; the pod gets the node's name
		nsOptions(cfg).Network = runtimeapi.NamespaceMode_NODE
		id := runPod(t, d, cfg)

		st := podStatus(t, d, id, false).Status
		if st.GetLinux().GetNamespaces().GetOptions().GetNetwork() != runtimeapi.NamespaceMode_NODE {
			t.Errorf("status namespace options = %v; want network NODE", st.GetLinux().GetNamespaces().GetOptions())
		}
		if ip := st.GetNetwork().GetIp(); ip != "" && ip != hostIP(t) {
			t.Errorf("host-network pod has IP %q; want none or the host's", ip)
		}
		for _, kind := range []string{"net", "uts"} {
			if exists(pin(d, id, kind)) {
				t.Errorf("host-network pod has a %s pin", kind)
			}
		}
		if fstype := mountAt(t, pin(d, id, "ipc")); fstype != "nsfs" {
			t.Errorf("host-network pod's ipc pin: fs %q; want nsfs", fstype)
		}
		if got := readTrimmed(t, filepath.Join(podDir(d, id), "hostname")); got != hostname {
			t.Errorf("hostname file = %q; want the host's %q", got, hostname)
		}
		if rules := linesWith(natRules(t), id); len(rules) > 0 {
			t.Errorf("a host-network pod has nat rules:\n%s", strings.Join(rules, "\n"))
		}
		if n := len(leases(t, d.Root)); n != leasesBefore {
			t.Errorf("a host-network pod took an IP lease (%d → %d)", leasesBefore, n)
		}
		if err := d.Runtime.RemovePodSandbox(ctxT(t), id); err != nil {
			t.Fatal(err)
		}
		checkGone(t, d, id, "")
	})

	t.Run("host ipc", func(t *testing.T) {
		cfg := podConfig("hostipc")
		nsOptions(cfg).Ipc = runtimeapi.NamespaceMode_NODE
		id := runPod(t, d, cfg)
		if got := podStatus(t, d, id, false).Status.GetLinux().GetNamespaces().GetOptions().GetIpc(); got != runtimeapi.NamespaceMode_NODE {
			t.Errorf("status ipc mode = %v; want NODE", got)
		}
		if exists(pin(d, id, "ipc")) {
			t.Error("host-ipc pod has an ipc pin")
		}
		if fstype := mountAt(t, filepath.Join(podDir(d, id), "shm")); fstype != "" {
			t.Errorf("host-ipc pod has a %s mount on shm", fstype)
		}
		for _, kind := range []string{"net", "uts"} {
			if fstype := mountAt(t, pin(d, id, kind)); fstype != "nsfs" {
				t.Errorf("host-ipc pod's %s pin: fs %q; want nsfs", kind, fstype)
			}
		}
		podIP(t, d, id)
	})
}

// hostSysctl reads a sysctl in the test's (the host's) namespaces.
func hostSysctl(t *testing.T, name string) string {
	t.Helper()
	return readTrimmed(t, "/proc/sys/"+strings.ReplaceAll(name, ".", "/"))
}

func TestPodSandboxSysctls(t *testing.T) {
	t.Parallel()
	d := startPodDaemon(t)
	names := []string{"net.ipv4.ip_unprivileged_port_start", "net.core.somaxconn", "kernel.shm_rmid_forced"}
	host := map[string]string{}
	for _, n := range names {
		host[n] = hostSysctl(t, n)
	}
	want := map[string]string{"net.ipv4.ip_unprivileged_port_start": "0", "net.core.somaxconn": "1000", "kernel.shm_rmid_forced": "1"}
	for n, v := range want {
		if host[n] == v {
			t.Fatalf("the host already has %s=%s; the test cannot tell pod from host", n, v)
		}
	}
	t.Cleanup(func() { // undo a daemon that wrote the host's values
		for n, v := range host {
			_ = os.WriteFile("/proc/sys/"+strings.ReplaceAll(n, ".", "/"), []byte(v), 0o644)
		}
	})

	cfg := podConfig("sysctls")
	cfg.Linux.Sysctls = want
	id := runPod(t, d, cfg)
	for n, v := range want {
		kind := "net"
		if strings.HasPrefix(n, "kernel.") {
			kind = "ipc"
		}
		if got := nsenter(t, kind, pin(d, id, kind), "cat", "/proc/sys/"+strings.ReplaceAll(n, ".", "/")); got != v {
			t.Errorf("%s in the pod = %q; want %q", n, got, v)
		}
		if got := hostSysctl(t, n); got != host[n] {
			t.Errorf("%s on the host changed from %q to %q", n, host[n], got)
		}
	}

	leasesBefore := len(leases(t, d.Root))
	for _, tc := range []struct {
		name    string
		sysctls map[string]string
		hostNet bool
		hostIPC bool
	}{
		{"not namespaced (kernel)", map[string]string{"kernel.panic": "1"}, false, false},
		{"not namespaced (vm)", map[string]string{"vm.swappiness": "1"}, false, false},
		{"unknown", map[string]string{"net.ipv4.no_such_thing": "1"}, false, false},
		{"net on host network", map[string]string{"net.core.somaxconn": "1000"}, true, false},
		{"ipc on host ipc", map[string]string{"kernel.shm_rmid_forced": "1"}, false, true},
		{"one bad among good", map[string]string{"net.core.somaxconn": "1000", "vm.swappiness": "1"}, false, false},
		{"bad value", map[string]string{"net.ipv4.ip_unprivileged_port_start": "lots"}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := podConfig("bad-sysctl")
			cfg.Linux.Sysctls = tc.sysctls
			hostPort := freeHostPort(t)
			cfg.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: hostPort}}
			if tc.hostNet {
				nsOptions(cfg).Network = runtimeapi.NamespaceMode_NODE
			}
			if tc.hostIPC {
				nsOptions(cfg).Ipc = runtimeapi.NamespaceMode_NODE
			}
			newID, err := d.Runtime.RunPodSandbox(ctxT(t), cfg, "")
			if status.Code(err) != codes.InvalidArgument {
				t.Errorf("RunPodSandbox with %v = %q, %v; want InvalidArgument", tc.sysctls, newID, err)
			}
			if err == nil {
				_ = d.Runtime.RemovePodSandbox(ctxT(t), newID)
			}
			for n := range tc.sysctls {
				if got, ok := host[n]; ok && hostSysctl(t, n) != got {
					t.Errorf("%s on the host changed to %s", n, hostSysctl(t, n))
				}
			}
			// Nothing is left of the failed pod.
			if got := listIDs(t, d, nil); !slices.Equal(got, []string{id}) {
				t.Errorf("pods after a failed run = %v; want only %s", got, id)
			}
			entries, _ := os.ReadDir(filepath.Join(d.State, "sandboxes"))
			for _, e := range entries {
				if e.Name() != id {
					t.Errorf("failed run left %s", filepath.Join(d.State, "sandboxes", e.Name()))
				}
			}
			for _, m := range mountsUnder(t, filepath.Join(d.State, "sandboxes")) {
				if !strings.HasPrefix(m.Point, podDir(d, id)+"/") {
					t.Errorf("failed run left the mount %s (%s)", m.Point, m.FSType)
				}
			}
			if m := len(leases(t, d.Root)); m != leasesBefore {
				t.Errorf("failed run left IP leases (%d → %d)", leasesBefore, m)
			}
			if left := linesWith(natRules(t), fmt.Sprintf("--dports %d ", hostPort)); len(left) > 0 {
				t.Errorf("failed run left nat rules for its host port:\n%s", strings.Join(left, "\n"))
			}
		})
	}
}

func podStats(t *testing.T, d *framework.Daemon, id string) *runtimeapi.PodSandboxStats {
	t.Helper()
	s, err := d.Runtime.PodSandboxStats(ctxT(t), id)
	if err != nil {
		t.Fatalf("PodSandboxStats(%s): %v", id, err)
	}
	return s
}

func TestPodSandboxStats(t *testing.T) {
	t.Parallel()
	d := startPodDaemon(t)
	cfg := podConfig("stats")
	cfg.Labels = map[string]string{"stats": "a"}
	a := runPod(t, d, cfg)
	b := runPod(t, d, podConfig("stats-b"))
	c := runPod(t, d, podConfig("stats-c"))
	if err := d.Runtime.StopPodSandbox(ctxT(t), c); err != nil {
		t.Fatal(err)
	}

	s := podStats(t, d, a)
	if s.GetAttributes().GetId() != a || s.GetAttributes().GetMetadata().GetUid() != cfg.Metadata.Uid || s.GetAttributes().GetLabels()["stats"] != "a" {
		t.Errorf("stats attributes = %v; want pod %s with its metadata and labels", s.GetAttributes(), a)
	}
	lin := s.GetLinux()
	if lin.GetCpu().GetTimestamp() == 0 || lin.GetMemory().GetTimestamp() == 0 {
		t.Errorf("stats cpu %v memory %v; want both with a timestamp", lin.GetCpu(), lin.GetMemory())
	}
	if lin.GetNetwork().GetTimestamp() == 0 {
		t.Errorf("network stats have no timestamp: %v", lin.GetNetwork())
	}
	eth := lin.GetNetwork().GetDefaultInterface()
	if eth.GetName() != "eth0" {
		t.Fatalf("default interface = %v; want eth0", eth)
	}

	// Traffic to the pod shows on its eth0.
	const payload = 512 << 10
	listenInNetns(t, pin(d, a, "net"), ":8080", "stats")
	addr := net.JoinHostPort(podIP(t, d, a), "8080")
	mustReach(t, addr, "stats")
	if _, err := talk(addr, payload); err != nil {
		t.Fatal(err)
	}
	var now *runtimeapi.NetworkInterfaceUsage
	if !eventually(10*time.Second, func() bool {
		now = podStats(t, d, a).GetLinux().GetNetwork().GetDefaultInterface()
		return now.GetRxBytes().GetValue() >= eth.GetRxBytes().GetValue()+payload && now.GetTxBytes().GetValue() > eth.GetTxBytes().GetValue()
	}) {
		t.Errorf("eth0 counters went from rx %d tx %d to rx %d tx %d after sending %d bytes; want rx +%d and tx growing",
			eth.GetRxBytes().GetValue(), eth.GetTxBytes().GetValue(), now.GetRxBytes().GetValue(), now.GetTxBytes().GetValue(), payload, payload)
	}

	// One entry per ready pod.
	all, err := d.Runtime.ListPodSandboxStats(ctxT(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range all {
		got = append(got, s.GetAttributes().GetId())
	}
	slices.Sort(got)
	if !slices.Equal(got, sorted(a, b)) {
		t.Errorf("ListPodSandboxStats = %v; want the ready pods %v", got, sorted(a, b))
	}
	for name, f := range map[string]*runtimeapi.PodSandboxStatsFilter{
		"id":    {Id: a},
		"label": {LabelSelector: map[string]string{"stats": "a"}},
	} {
		one, err := d.Runtime.ListPodSandboxStats(ctxT(t), f)
		if err != nil || len(one) != 1 || one[0].GetAttributes().GetId() != a {
			t.Errorf("ListPodSandboxStats(by %s) = %v, %v; want pod %s only", name, one, err, a)
		}
	}
	if _, err := d.Runtime.PodSandboxStats(ctxT(t), strings.Repeat("cd", 32)); status.Code(err) != codes.NotFound {
		t.Errorf("PodSandboxStats(unknown) = %v; want NotFound, as PodSandboxStatus", err)
	}
}
