package spec

import (
	"slices"
	"testing"
)

func TestGrantableCapabilitiesFollowTheBoundingSet(t *testing.T) {
	const sysResource = 24
	for _, sec := range []Security{{Privileged: true}, {CapAdd: []string{"ALL"}}} {
		in := baseInput(t)
		in.Host.BoundingSet = ^uint64(0) &^ (1 << sysResource)
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
