package framework

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// Network is a test daemon's built-in pod network: a bridge and a /24 of its
// own (network.default_bridge and network.default_subnet), so that daemons of
// tests running in parallel never share a bridge, a gateway or an address
// pool, and what a test inspects on the host (the bridge's ports, the leases,
// the addresses it dials) is its daemon's alone.
type Network struct {
	Bridge  string // crirt-eNNN
	Subnet  string // 10.80.NNN.0/24
	Gateway string // the bridge's address, 10.80.NNN.1

	slot *os.File // held (flock) while the daemon may use the network
}

const (
	// networkSlots is how many networks the test daemons on one host can
	// have at once: 10.80.0.0/24 to 10.80.255.0/24.
	networkSlots = 256
	// networkLockDir holds one lock file per slot. A slot is claimed with an
	// flock on its file, which the kernel drops when the holder dies, so a
	// killed test run leaves no claim behind, and two test processes on one
	// host (two e2e runs, or critest and e2e) never pick the same slot.
	networkLockDir = "/run/cri-runtime-e2e/networks"
	// masqueradeComment is the daemon's on the NAT rule of its built-in
	// network (pkg/sandbox/cni).
	masqueradeComment = "cri-runtime built-in network"
)

// ClaimNetwork claims a free network slot for a daemon. Whatever an earlier
// holder of the slot left (its bridge, its NAT rule: a killed test run) is
// removed first. Release gives it back.
func ClaimNetwork() (*Network, error) {
	if err := os.MkdirAll(networkLockDir, 0o755); err != nil {
		return nil, err
	}
	for i := range networkSlots {
		f, err := os.OpenFile(filepath.Join(networkLockDir, fmt.Sprint(i)), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return nil, err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				continue
			}
			return nil, fmt.Errorf("lock network slot %d: %w", i, err)
		}
		n := &Network{
			// The pod CIDR's bridge is named after the first 10 characters
			// of this name (pkg/sandbox/cni): they differ per slot.
			Bridge:  fmt.Sprintf("crirt-e%03d", i),
			Subnet:  fmt.Sprintf("10.80.%d.0/24", i),
			Gateway: fmt.Sprintf("10.80.%d.1", i),
			slot:    f,
		}
		n.clear()
		return n, nil
	}
	return nil, fmt.Errorf("all %d test networks are in use", networkSlots)
}

// Config is the network's configuration drop-in for the daemon.
func (n *Network) Config() string {
	return fmt.Sprintf("[network]\ndefault_bridge = %q\ndefault_subnet = %q\n", n.Bridge, n.Subnet)
}

// Contains tells whether ip is one of the network's addresses.
func (n *Network) Contains(ip string) bool {
	_, sub, _ := net.ParseCIDR(n.Subnet)
	p := net.ParseIP(ip)
	return p != nil && sub.Contains(p)
}

// Release removes the bridge and the NAT rule the daemon made for the
// network (a daemon leaves them, as it leaves crirt0 on a node) and frees the
// slot. Call it once the daemon and its pods are gone.
func (n *Network) Release() {
	if n.slot == nil {
		return
	}
	n.clear()
	n.slot.Close()
	n.slot = nil
}

func (n *Network) clear() {
	if _, err := net.InterfaceByName(n.Bridge); err == nil {
		_ = exec.Command("ip", "link", "del", n.Bridge).Run()
	}
	// -C first: most daemons of the suite never run a pod, and so never
	// install the rule; -D of an absent rule logs on some iptables versions.
	rule := []string{"POSTROUTING", "-s", n.Subnet, "!", "-d", n.Subnet, "-m", "comment", "--comment", masqueradeComment, "-j", "MASQUERADE"}
	for exec.Command("iptables", append([]string{"-w", "-t", "nat", "-C"}, rule...)...).Run() == nil {
		if exec.Command("iptables", append([]string{"-w", "-t", "nat", "-D"}, rule...)...).Run() != nil {
			break
		}
	}
}

var (
	portsMu sync.Mutex
	ports   = map[int]bool{} // handed out by FreePort
)

// FreePort returns a TCP port that nothing listens on now and that FreePort
// has not returned before in this process: tests running in parallel map
// host ports to their pods (DNAT rules, which listen on nothing) and start
// kubelets on ports, and two of them must never get the same one.
func FreePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for {
		l, err := net.Listen("tcp", ":0")
		if err != nil {
			return 0, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !ports[p] {
			ports[p] = true
			return p, nil
		}
	}
}
