package cni

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/cri-runtime/cri-runtime/pkg/cleanup"
)

// PodInterface is the interface CNI creates in every pod's netns.
const PodInterface = "eth0"

// Pod is what CNI needs to know about a pod to attach or detach it.
type Pod struct {
	ID, Name, Namespace, UID string
	NetNS                    string // path of the pinned netns; "" when it is gone
	PortMappings             []PortMapping
	Bandwidth                *Bandwidth
	DNS                      *DNS
}

// PortMapping is the portMappings capability's entry.
type PortMapping struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// Bandwidth is the bandwidth capability, in bits per second.
type Bandwidth struct {
	IngressRate  uint64 `json:"ingressRate,omitempty"`
	IngressBurst uint64 `json:"ingressBurst,omitempty"`
	EgressRate   uint64 `json:"egressRate,omitempty"`
	EgressBurst  uint64 `json:"egressBurst,omitempty"`
}

// DNS is the dns capability.
type DNS struct {
	Servers  []string `json:"servers,omitempty"`
	Searches []string `json:"searches,omitempty"`
	Options  []string `json:"options,omitempty"`
}

// Attachment is what Attach did, kept with the pod so that Detach undoes
// exactly that, even after the configuration changed or the daemon restarted.
type Attachment struct {
	Network  string   `json:"network"`
	ConfList []byte   `json:"confList"` // the network configuration ADD ran with
	IPs      []string `json:"ips"`      // the pod's addresses, IPv4 first
}

// Attach runs CNI ADD for the pod network in pod.NetNS (the caller brings up
// loopback itself). On failure it runs DEL for what it added, so nothing is
// left behind.
func (m *Manager) Attach(ctx context.Context, pod Pod) (att *Attachment, retErr error) {
	network, err := m.Network(ctx)
	if err != nil {
		return nil, err
	}
	list := network.list
	if network.withoutPortmap != nil && len(pod.PortMappings) == 0 {
		list = network.withoutPortmap
	}
	start := time.Now()
	rt := runtimeConf(pod, PodInterface)
	// A failed ADD may have done part of its work: DEL undoes it (the CNI
	// spec has DEL tolerate what is not there).
	undo := cleanup.New(m.log, "roll back a failed CNI ADD", "pod", pod.ID)
	defer undo.OnError(ctx, &retErr)
	undo.Push("CNI DEL", func(ctx context.Context) error { return m.cni.DelNetworkList(ctx, list, rt) })
	res, err := m.cni.AddNetworkList(ctx, list, rt)
	m.log.Debug("CNI ADD", "pod", pod.ID, "network", network.Name, "took", time.Since(start))
	if err != nil {
		return nil, fmt.Errorf("CNI ADD network %q: %w", network.Name, err)
	}
	result, err := current.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("CNI ADD network %q: unreadable result: %w", network.Name, err)
	}
	att = &Attachment{Network: network.Name, ConfList: list.Bytes}
	var v6 []string
	for _, ip := range result.IPs {
		if ip.Interface != nil && (*ip.Interface < 0 || *ip.Interface >= len(result.Interfaces) || result.Interfaces[*ip.Interface].Sandbox == "") {
			continue // an address of a host-side interface
		}
		if ip.Address.IP.To4() != nil {
			att.IPs = append(att.IPs, ip.Address.IP.String())
		} else {
			v6 = append(v6, ip.Address.IP.String())
		}
	}
	att.IPs = append(att.IPs, v6...)
	if len(att.IPs) == 0 {
		return nil, fmt.Errorf("CNI ADD network %q gave the pod no address", network.Name)
	}
	return att, nil
}

// Detach runs CNI DEL with the configuration ADD used. It tolerates a netns
// that is already gone (DEL then only releases addresses and host rules) and
// is idempotent, as the CNI spec requires DEL to be.
func (m *Manager) Detach(ctx context.Context, pod Pod, att *Attachment) error {
	if att == nil {
		return nil
	}
	list, err := libcni.NetworkConfFromBytes(att.ConfList)
	if err != nil {
		return fmt.Errorf("CNI DEL: stored network configuration: %w", err)
	}
	if pod.NetNS != "" {
		if _, err := os.Stat(pod.NetNS); errors.Is(err, fs.ErrNotExist) {
			pod.NetNS = ""
		}
	}
	start := time.Now()
	if err := m.cni.DelNetworkList(ctx, list, runtimeConf(pod, PodInterface)); err != nil {
		return fmt.Errorf("CNI DEL network %q: %w", att.Network, err)
	}
	m.log.Debug("CNI DEL", "pod", pod.ID, "network", att.Network, "took", time.Since(start))
	return nil
}

// runtimeConf is the per-pod part of a CNI invocation.
func runtimeConf(pod Pod, ifName string) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{
		ContainerID: pod.ID,
		NetNS:       pod.NetNS,
		IfName:      ifName,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", pod.Namespace},
			{"K8S_POD_NAME", pod.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", pod.ID},
			{"K8S_POD_UID", pod.UID},
		},
		CapabilityArgs: map[string]any{},
	}
	if len(pod.PortMappings) > 0 {
		rt.CapabilityArgs["portMappings"] = pod.PortMappings
	}
	if pod.Bandwidth != nil {
		rt.CapabilityArgs["bandwidth"] = pod.Bandwidth
	}
	if pod.DNS != nil {
		rt.CapabilityArgs["dns"] = pod.DNS
	}
	return rt
}

// DetachCurrent runs CNI DEL with the network configured now, for a pod
// whose ADD may have happened but whose attachment was never recorded (the
// daemon died in between). DEL of what was never added is harmless.
func (m *Manager) DetachCurrent(ctx context.Context, pod Pod) error {
	network, err := m.Network(ctx)
	if err != nil {
		return err
	}
	return m.Detach(ctx, pod, &Attachment{Network: network.Name, ConfList: network.list.Bytes})
}
