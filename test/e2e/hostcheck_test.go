package e2e

// Host inspection for the pod sandbox tests: what is mounted, which veths hang
// off the pod bridge, which IP leases exist, which iptables rules and cgroups
// are there, and a way to serve TCP from inside a pinned network namespace.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// newCgroupTop names a cgroup parent for one test's pods, of its own so
// that tests running in parallel never share one.
func newCgroupTop() string { return "crirt-e2e-" + randomHex(4) }

// mount is one line of /proc/self/mountinfo.
type mount struct {
	Point, FSType, Source string
}

func mounts(t *testing.T) []mount {
	t.Helper()
	infos, err := mountinfo.GetMounts(nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]mount, 0, len(infos))
	for _, m := range infos {
		out = append(out, mount{Point: m.Mountpoint, FSType: m.FSType, Source: m.Source})
	}
	return out
}

// mountsUnder lists the mounts at dir or below it.
func mountsUnder(t *testing.T, dir string) []mount {
	t.Helper()
	var out []mount
	for _, m := range mounts(t) {
		if m.Point == dir || strings.HasPrefix(m.Point, dir+"/") {
			out = append(out, m)
		}
	}
	return out
}

// mountAt returns the filesystem type mounted exactly at p ("" when none).
func mountAt(t *testing.T, p string) string {
	t.Helper()
	fstype := ""
	for _, m := range mounts(t) {
		if m.Point == p {
			fstype = m.FSType // the last one wins, as in the kernel
		}
	}
	return fstype
}

// countNsfsMounts counts the namespace pins on the host, leaving out those of
// other test daemons (under other directories in the temp dir) so that a
// concurrent test run does not disturb the count.
func countNsfsMounts(t *testing.T, own string) int {
	t.Helper()
	tmp := filepath.Clean(os.TempDir()) + "/"
	n := 0
	for _, m := range mounts(t) {
		if m.FSType == "nsfs" && (!strings.HasPrefix(m.Point, tmp) || strings.HasPrefix(m.Point, own+"/")) {
			n++
		}
	}
	return n
}

// hostVeth finds the host end of the pod's eth0 (pinned at netPin): its
// ifindex and name, and the bridge it is attached to.
func hostVeth(t *testing.T, netPin string) (index int, name, master string) {
	t.Helper()
	out := nsenter(t, "net", netPin, "ip", "-o", "link", "show", "dev", "eth0")
	m := regexp.MustCompile(`eth0@if(\d+):`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("pod eth0 is not one end of a pair: %q", out)
	}
	index, _ = strconv.Atoi(m[1])
	ifc, err := net.InterfaceByIndex(index)
	if err != nil {
		t.Fatalf("host end (ifindex %d) of the pod's eth0: %v", index, err)
	}
	target, _ := os.Readlink(filepath.Join("/sys/class/net", ifc.Name, "master"))
	return index, ifc.Name, filepath.Base(target)
}

// linkExists reports whether the host has an interface with this index.
func linkExists(index int) bool {
	_, err := net.InterfaceByIndex(index)
	return err == nil
}

// natChains lists the chains that the nat rules naming the pod jump to
// (the bridge's CNI-<hash> masquerade chain, portmap's CNI-DN-<hash>).
func natChains(t *testing.T, id string) []string {
	t.Helper()
	re := regexp.MustCompile(`-j (CNI-[A-Za-z0-9-]+)`)
	var out []string
	for _, l := range linesWith(natRules(t), id) {
		if m := re.FindStringSubmatch(l); m != nil && !strings.HasPrefix(m[1], "CNI-HOSTPORT-") && !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

// leases lists the host-local lease files (files named by an IP) under the
// daemon's CNI data directory.
func leases(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(root, "cni", "networks"), func(p string, e os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if !e.IsDir() && net.ParseIP(e.Name()) != nil {
			out = append(out, e.Name())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// leaseFile is where host-local keeps the lease of ip on the built-in network.
func leaseFile(root, ip string) string {
	return filepath.Join(root, "cni", "networks", "cri-runtime", ip)
}

// natRules is `iptables-save -t nat`, one rule or chain per line.
func natRules(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("iptables-save", "-t", "nat").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables-save: %v\n%s", err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// linesWith returns the lines that contain any of the words.
func linesWith(lines []string, words ...string) []string {
	var out []string
	for _, l := range lines {
		for _, w := range words {
			if w != "" && strings.Contains(l, w) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// nsenter runs a command in the namespace pinned at pin; kind is net, ipc or uts.
func nsenter(t *testing.T, kind, pin string, args ...string) string {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{"--" + kind + "=" + pin, "--"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter --%s=%s %v: %v\n%s", kind, pin, args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func readTrimmed(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// nsInode is the inode of a namespace file (a pin, or /proc/self/ns/<kind>).
func nsInode(t *testing.T, p string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatalf("stat %s: %v", p, err)
	}
	return st.Ino
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// listenInNetns opens a TCP listener inside the network namespace pinned at
// pin and serves it: every connection is greeted with token and a newline,
// then read to its end and closed. The listener is closed when the test ends.
func listenInNetns(t *testing.T, pin, addr, token string) net.Listener {
	t.Helper()
	type result struct {
		l   net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is only handed back once it is in the host namespace
		// again; otherwise it ends with this goroutine.
		home, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer home.Close()
		target, err := os.Open(pin)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("setns %s: %w", pin, err)}
			return
		}
		l, lerr := net.Listen("tcp", addr)
		if unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{l, lerr}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, pin, r.err)
	}
	t.Cleanup(func() { r.l.Close() })
	go func() {
		for {
			c, err := r.l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintln(c, token)
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	return r.l
}

// talk connects to addr, checks the greeting, sends payload bytes and waits
// for the server to close.
func talk(addr string, payload int) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	greeting, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read greeting from %s: %w", addr, err)
	}
	if payload > 0 {
		if _, err := c.Write(make([]byte, payload)); err != nil {
			return "", err
		}
	}
	_ = c.(*net.TCPConn).CloseWrite()
	_, _ = io.Copy(io.Discard, c)
	return strings.TrimSpace(greeting), nil
}

// mustReach polls addr until it answers with token, for up to 15 seconds.
func mustReach(t *testing.T, addr, token string) {
	t.Helper()
	var last error
	if !eventually(15*time.Second, func() bool {
		got, err := talk(addr, 0)
		if err == nil && got != token {
			err = fmt.Errorf("greeting %q; want %q", got, token)
		}
		last = err
		return err == nil
	}) {
		// What the host knows of the address, to tell a daemon fault from
		// another pod holding the same IP on the bridge.
		host, _, _ := net.SplitHostPort(addr)
		neigh, _ := exec.Command("ip", "neigh", "show", "to", host).CombinedOutput()
		route, _ := exec.Command("ip", "-o", "route", "get", host).CombinedOutput()
		dev := "" // the interface the host reaches it through: its pod's bridge
		if f := strings.Fields(string(route)); slices.Index(f, "dev") >= 0 && slices.Index(f, "dev") < len(f)-1 {
			dev = f[slices.Index(f, "dev")+1]
		}
		ports, _ := os.ReadDir(filepath.Join("/sys/class/net", dev, "brif"))
		t.Fatalf("%s did not answer: %v (neighbour entry %q, %d ports on %q)", addr, last, strings.TrimSpace(string(neigh)), len(ports), dev)
	}
}

// mustNotReach checks that nothing answers on addr any more.
func mustNotReach(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections", addr)
	}
}

// eventually polls cond every 50ms until it holds or timeout passes.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
}

// freeHostPort returns a TCP port nothing listens on at the moment, and
// that no other test of the run got (framework.FreePort).
func freeHostPort(t *testing.T) int32 {
	t.Helper()
	p, err := framework.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return int32(p)
}

// hostIP is the host's first global IPv4 address outside the pod networks
// (the bridges of the test daemons, and crirt0 of other daemons).
func hostIP(t *testing.T) string {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 || strings.HasPrefix(ifc.Name, "crirt") {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.String()
			}
		}
	}
	t.Fatal("the host has no non-loopback IPv4 address")
	return ""
}

// purgeNatRules deletes what a pod left in the nat table: the rules naming
// it and the chains they jump to. It reports how many rules it deleted.
func purgeNatRules(t *testing.T, id string) int {
	t.Helper()
	chains := natChains(t, id)
	n := 0
	for _, l := range linesWith(natRules(t), id) {
		if strings.HasPrefix(l, "-A ") {
			// iptables-save quotes its output for a shell.
			if out, err := exec.Command("sh", "-c", "iptables -t nat -D "+strings.TrimPrefix(l, "-A ")).CombinedOutput(); err != nil {
				t.Logf("delete nat rule %q: %v %s", l, err, out)
			}
			n++
		}
	}
	for _, op := range []string{"-F", "-X"} {
		for _, c := range chains {
			_ = exec.Command("iptables", "-t", "nat", op, c).Run()
		}
	}
	return n
}

// unmountUnder detaches whatever is still mounted under dir, deepest first,
// so a failed test leaves no mounts on the host.
func unmountUnder(t *testing.T, dir string) {
	t.Helper()
	ms := mountsUnder(t, dir)
	for i := len(ms) - 1; i >= 0; i-- {
		if err := unix.Unmount(ms[i].Point, unix.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			t.Logf("unmount %s: %v", ms[i].Point, err)
		}
	}
}
