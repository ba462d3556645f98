package e2e

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// hostHugepageLimits is what the kubelet sends for a container that asks
// for no huge pages: a limit of 0 for every page size the host has.
func hostHugepageLimits(t *testing.T) []*runtimeapi.HugepageLimit {
	t.Helper()
	dirs, _ := filepath.Glob("/sys/kernel/mm/hugepages/hugepages-*kB")
	var out []*runtimeapi.HugepageLimit
	for _, d := range dirs {
		kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(d), "hugepages-"), "kB"))
		if err != nil {
			t.Fatalf("hugepage size of %s: %v", d, err)
		}
		size := strconv.Itoa(kb/1024) + "MB"
		if kb >= 1<<20 {
			size = strconv.Itoa(kb/(1<<20)) + "GB"
		}
		out = append(out, &runtimeapi.HugepageLimit{PageSize: size, Limit: 0})
	}
	if len(out) == 0 {
		out = []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 0}}
	}
	return out
}

// hugetlbInV1 reports whether runc's cgroup v1 manager can reach the
// hugetlb controller (a v1 hierarchy of its own or shared).
func hugetlbInV1() bool {
	mounts, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, m := range mounts {
		for _, c := range strings.Split(filepath.Base(m), ",") {
			if c == "hugetlb" {
				return true
			}
		}
	}
	return false
}

// The kubelet sets hugepage limits on every container (issue #12: on this
// cgroup v1 host, whose hugetlb controller lives only in the unified
// hierarchy, every CreateContainer failed in runc). Where the controller is
// missing the limits are dropped and the daemon says so once; where it is
// present they are applied. The other limits land either way.
func TestHugepageLimits(t *testing.T) {
	t.Parallel()
	d, _ := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "hugepages")
	huge := hostHugepageLimits(t)
	var ids []string
	for _, name := range []string{"a", "b"} {
		cfg := shCfg(name, "exec sleep 1000")
		cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20, CpuShares: 256, HugepageLimits: huge}
		ids = append(ids, runCtr(t, d, pod, podCfg, cfg))
	}
	pid := runningPid(t, d, ids[0])
	if v, err := framework.CgroupV1File(pid, "memory", "memory.limit_in_bytes"); err != nil || v != strconv.Itoa(64<<20) {
		t.Errorf("memory.limit_in_bytes = %q, %v; want %d", v, err, 64<<20)
	}
	if hugetlbInV1() {
		v, err := framework.CgroupV1File(pid, "hugetlb", "hugetlb."+huge[0].PageSize+".limit_in_bytes")
		if err != nil || v != "0" {
			t.Errorf("hugetlb.%s.limit_in_bytes = %q, %v; want 0", huge[0].PageSize, v, err)
		}
	} else if n := strings.Count(d.Logs(), "controller=hugetlb"); n != 1 {
		t.Errorf("the daemon logged the missing hugetlb controller %d times for two containers; want once", n)
	}
	// An update carrying them too (the kubelet's in-place resize) applies.
	if err := d.Runtime.UpdateContainerResources(ctxT(t), ids[0], &runtimeapi.ContainerResources{Linux: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 96 << 20, HugepageLimits: huge}}); err != nil {
		t.Fatalf("UpdateContainerResources with hugepage limits: %v", err)
	}
	if v, err := framework.CgroupV1File(pid, "memory", "memory.limit_in_bytes"); err != nil || v != strconv.Itoa(96<<20) {
		t.Errorf("after the update memory.limit_in_bytes = %q, %v; want %d", v, err, 96<<20)
	}
}
