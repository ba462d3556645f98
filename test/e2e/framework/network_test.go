package framework

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Daemons that run at once get networks that share nothing, and a released
// network's slot is claimed again.
func TestClaimNetwork(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the slots' lock files are under /run: needs root")
	}
	var nets []*Network
	t.Cleanup(func() {
		for _, n := range nets {
			n.Release()
		}
	})
	bridges, prefixes, subnets := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for range 3 {
		n, err := ClaimNetwork()
		if err != nil {
			t.Fatal(err)
		}
		nets = append(nets, n)
		// The pod CIDR's bridge is named after the first 10 characters
		// (pkg/sandbox/cni), and an interface name has at most 15.
		if len(n.Bridge) > 15 || bridges[n.Bridge] || prefixes[n.Bridge[:10]] || subnets[n.Subnet] {
			t.Errorf("network %+v: a bridge name longer than 15 or shared with another network", n)
		}
		bridges[n.Bridge], prefixes[n.Bridge[:10]], subnets[n.Subnet] = true, true, true
		if !n.Contains(n.Gateway) || n.Contains("10.77.0.1") || !strings.Contains(n.Config(), n.Subnet) {
			t.Errorf("network %+v: gateway outside the subnet, or the subnet overlaps crirt0's", n)
		}
	}
	// Released, the slot's lock is free: this process can take it again.
	path := nets[0].slot.Name()
	nets[0].Release()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Errorf("the released slot %s is still locked: %v", path, err)
	}
}
