package sandbox

import "github.com/cri-runtime/cri-runtime/pkg/sandbox/cni"

// The network values the pod service takes and hands out, named here so that
// its clients (pkg/cri) depend on this service alone, not on its CNI
// package. They are aliases: the same types, re-exported.

// PortMapping is a pod port published on the node (Config.PortMappings).
type PortMapping = cni.PortMapping

// PodNetwork is the pod network in use, as readiness and Status report it.
type PodNetwork = cni.Network
