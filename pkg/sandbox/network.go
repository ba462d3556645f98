package sandbox

import (
	"context"
	"fmt"
	"sync"

	"github.com/cri-runtime/cri-runtime/pkg/safego"
	"github.com/cri-runtime/cri-runtime/pkg/sandbox/cni"
)

// The network values the pod service takes and hands out, named here so that
// its clients (pkg/cri) depend on this service alone, not on its CNI
// package. They are aliases: the same types, re-exported.

// PortMapping is a pod port published on the node (Config.PortMappings).
type PortMapping = cni.PortMapping

// PodNetwork is the pod network in use, as readiness and Status report it.
type PodNetwork = cni.Network

// attachSoon starts CNI ADD for a pod with a network of its own and
// returns what waits for it (the same answer to every caller); nil for a
// pod on the node's network.
func (m *Manager) attachSoon(ctx context.Context, sb *Sandbox) func() (*cni.Attachment, error) {
	if sb.Config.HostNetwork {
		return nil
	}
	pod := m.cniPod(sb) // a copy: the record changes meanwhile
	type result struct {
		att *cni.Attachment
		err error
	}
	done := make(chan result, 1)
	go func() {
		r := result{err: fmt.Errorf("CNI ADD of pod %s panicked", pod.ID)}
		defer func() { done <- r }()
		defer safego.Recover(m.log, "CNI ADD")
		r.att, r.err = m.opts.Network.Attach(ctx, pod)
	}()
	var (
		once sync.Once
		r    result
	)
	return func() (*cni.Attachment, error) {
		once.Do(func() { r = <-done })
		return r.att, r.err
	}
}

func (m *Manager) cniPod(sb *Sandbox) cni.Pod {
	md := sb.Config.Metadata
	pod := cni.Pod{ID: sb.ID, Name: md.Name, Namespace: md.Namespace, UID: md.UID, NetNS: sb.NetNSPath(), PortMappings: sb.Config.PortMappings}
	pod.Bandwidth, _ = bandwidth(sb.Config.Annotations) // validated by Run
	if dns := sb.Config.DNS; dns != nil {
		pod.DNS = &cni.DNS{Servers: dns.Servers, Searches: dns.Searches, Options: dns.Options}
	}
	return pod
}
