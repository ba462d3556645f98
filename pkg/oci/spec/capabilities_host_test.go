package spec

import (
	"slices"
	"testing"
)

// The spec tests describe a host that may grant every capability; the
// daemon's real bounding set is tested below.
func init() { boundingSet = func() uint64 { return ^uint64(0) } }

func TestGrantableCapabilitiesFollowTheBoundingSet(t *testing.T) {
	saved := boundingSet
	defer func() { boundingSet = saved }()
	const sysResource = 24
	boundingSet = func() uint64 { return ^uint64(0) &^ (1 << sysResource) }

	for _, sec := range []Security{{Privileged: true}, {CapAdd: []string{"ALL"}}} {
		in := baseInput(t)
		in.Security = sec
		caps := mustBuild(t, in).Process.Capabilities
		if slices.Contains(caps.Bounding, "CAP_SYS_RESOURCE") || slices.Contains(caps.Effective, "CAP_SYS_RESOURCE") {
			t.Fatalf("%+v: got CAP_SYS_RESOURCE, which the host's bounding set lacks", sec)
		}
		if !slices.Contains(caps.Effective, "CAP_SYS_ADMIN") {
			t.Fatalf("%+v: lost CAP_SYS_ADMIN, which the host allows", sec)
		}
	}
}
