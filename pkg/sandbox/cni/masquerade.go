package cni

import (
	"fmt"
	"net"

	"github.com/coreos/go-iptables/iptables"
)

// masqueradeComment marks the rule so operators can tell whose it is.
const masqueradeComment = "cri-runtime built-in network"

// ensureMasquerade installs, once, the NAT rule that lets pods on subnet
// reach beyond it through the host's address. It is idempotent and stays
// when the daemon stops, like the bridge it serves.
func ensureMasquerade(subnet string) error {
	_, ipnet, err := net.ParseCIDR(subnet)
	if err != nil {
		return err
	}
	proto := iptables.ProtocolIPv4
	if ipnet.IP.To4() == nil {
		proto = iptables.ProtocolIPv6
	}
	ipt, err := iptables.NewWithProtocol(proto)
	if err != nil {
		return fmt.Errorf("iptables: %w", err)
	}
	rule := []string{"-s", ipnet.String(), "!", "-d", ipnet.String(), "-m", "comment", "--comment", masqueradeComment, "-j", "MASQUERADE"}
	if err := ipt.AppendUnique("nat", "POSTROUTING", rule...); err != nil {
		return fmt.Errorf("install masquerade rule for %s: %w", subnet, err)
	}
	return nil
}
