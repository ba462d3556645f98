package spec

import specs "github.com/opencontainers/runtime-spec/specs-go"

// Host is what the builder needs to know of the node the container runs on,
// beyond the request: gathered once at start-up (ProbeHost) by whoever
// builds specs, and passed in every Input. Tests describe a host by setting
// these fields; the package keeps no host state of its own.
//
// The zero Host is a node that grants every capability and has no device
// nodes to give privileged containers.
type Host struct {
	// Devices lists the host's device nodes a privileged container gets. It
	// is called at each such Build, not once, because devices come and go
	// (a GPU plugged in after start-up is given too). nil lists none.
	Devices func() ([]specs.LinuxDevice, error) `json:"-"`
	// BoundingSet is the daemon's capability bounding set (CapBnd): no
	// container can be given more, and "privileged" or "add ALL" mean every
	// known capability in it. 0 means not known: every capability.
	BoundingSet uint64
}

// ProbeHost reads this node's facts: its device nodes under /dev and the
// daemon's capability bounding set.
func ProbeHost() Host {
	return Host{
		Devices:     func() ([]specs.LinuxDevice, error) { return walkDevices("/dev") },
		BoundingSet: readBoundingSet(),
	}
}

// boundingSet is BoundingSet with 0 read as every capability.
func (h Host) boundingSet() uint64 {
	if h.BoundingSet == 0 {
		return ^uint64(0)
	}
	return h.BoundingSet
}

// devices lists the host's device nodes (none when Devices is nil).
func (h Host) devices() ([]specs.LinuxDevice, error) {
	if h.Devices == nil {
		return nil, nil
	}
	return h.Devices()
}
