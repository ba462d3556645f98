package spec

import (
	"fmt"
	"strings"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// minMemoryLimit is the smallest memory limit accepted: below it runc's
// own init is killed by the OOM killer before the container starts, which
// the kubelet would only see as an unexplained failure. CRI-O refuses the
// same (its minMemoryLimit).
const minMemoryLimit = 12 << 20

// Bounds the kernel puts on CFS bandwidth (kernel/sched/core.c): a period
// of 1 ms to 1 s, a quota of at least 1 ms, or -1 for none.
const (
	minCPUPeriod = 1000
	maxCPUPeriod = 1000000
	minCPUQuota  = 1000
)

// checkResources refuses, as InvalidArgument, the limits the OCI runtime or
// the kernel would refuse later with a message the kubelet cannot act on,
// and cgroup file names that could name a file outside the cgroup.
func checkResources(r Resources) error {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)
	}
	switch {
	case r.MemoryLimit > 0 && r.MemoryLimit < minMemoryLimit:
		return invalid("memory limit %d is below the minimum of %d bytes", r.MemoryLimit, minMemoryLimit)
	case r.CPUQuota < -1:
		return invalid("cpu quota %d is negative (only -1, no limit, is allowed)", r.CPUQuota)
	case r.CPUQuota > 0 && r.CPUQuota < minCPUQuota:
		return invalid("cpu quota %d is below the kernel's minimum of %d microseconds", r.CPUQuota, minCPUQuota)
	case r.CPUPeriod != 0 && (r.CPUPeriod < minCPUPeriod || r.CPUPeriod > maxCPUPeriod):
		return invalid("cpu period %d is outside the kernel's range of %d to %d microseconds", r.CPUPeriod, minCPUPeriod, maxCPUPeriod)
	}
	for k := range r.Unified {
		if !cgroupFileName(k) {
			return invalid("unified key %q is not a cgroup file name (controller.file)", k)
		}
	}
	for _, h := range r.Hugepages {
		if h.PageSize != "" && !alnum(h.PageSize) {
			return invalid("hugepage page size %q is not a size such as 2MB", h.PageSize)
		}
	}
	return nil
}

// cgroupFileName: "memory.high", "io.max"…: one path element, no "..".
func cgroupFileName(k string) bool {
	if k == "" || strings.Contains(k, "..") || strings.HasPrefix(k, ".") {
		return false
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func alnum(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
