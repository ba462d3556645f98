package spec

import (
	"errors"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func TestCheckResources(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Resources
		ok   bool
	}{
		{"none", Resources{}, true},
		{"usual", Resources{MemoryLimit: 64 << 20, CPUPeriod: 100000, CPUQuota: 50000, Unified: map[string]string{"memory.high": "1G"},
			Hugepages: []Hugepage{{PageSize: "2MB", Limit: 1 << 21}}}, true},
		{"no cpu limit", Resources{CPUQuota: -1}, true},
		{"1-byte memory", Resources{MemoryLimit: 1}, false},
		{"negative quota", Resources{CPUQuota: -5}, false},
		{"tiny quota", Resources{CPUQuota: 10}, false},
		{"tiny period", Resources{CPUPeriod: 10}, false},
		{"huge period", Resources{CPUPeriod: 10_000_000}, false},
		{"unified escapes", Resources{Unified: map[string]string{"../../../etc/x": "1"}}, false},
		{"unified subdir", Resources{Unified: map[string]string{"sub/memory.max": "1"}}, false},
		{"unified dot", Resources{Unified: map[string]string{"..": "1"}}, false},
		{"hugepage escapes", Resources{Hugepages: []Hugepage{{PageSize: "../2MB", Limit: 1}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkResources(tc.r)
			if tc.ok && err != nil || !tc.ok && !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("checkResources(%+v) = %v; want ok=%v (else InvalidArgument)", tc.r, err, tc.ok)
			}
			if _, err := LinuxResources(tc.r, nil); tc.ok != (err == nil) {
				t.Fatalf("LinuxResources(%+v) = %v; want ok=%v", tc.r, err, tc.ok)
			}
		})
	}
}
