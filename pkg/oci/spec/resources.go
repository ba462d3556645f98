package spec

import (
	"fmt"
	"maps"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// setResources maps the request's limits to linux.resources; zero values
// are left unset so the runtime and the parent cgroup decide. The devices
// rules are written by setDevices.
//
// Memory swap: MemorySwapLimit when given (memory+swap, as cgroup v1's
// memsw and runc's "swap" field mean it), else equal to the memory limit,
// which gives the container no swap.
//
// Limits of a controller absent from in.Controllers are left out, as
// containerd does for hugetlb: the kubelet sets hugepage limits on every
// container, and on a host whose hugetlb controller is not in the v1
// hierarchy runc would fail every create (MissingControllers names them,
// for the caller to log).
func setResources(g *generate.Generator, in Input) error {
	r := in.Resources
	if err := checkResources(r); err != nil {
		return err
	}
	for _, v := range []struct {
		name string
		val  int64
	}{
		{"cpu period", r.CPUPeriod}, {"cpu shares", r.CPUShares},
		{"memory limit", r.MemoryLimit}, {"pids limit", r.PidsLimit},
	} {
		if v.val < 0 {
			return fmt.Errorf("%s %d is negative: %w", v.name, v.val, errdefs.ErrInvalidArgument)
		}
	}
	if r.MemorySwapLimit < -1 {
		return fmt.Errorf("memory swap limit %d is below -1: %w", r.MemorySwapLimit, errdefs.ErrInvalidArgument)
	}
	for _, h := range r.Hugepages {
		if h.PageSize == "" {
			return fmt.Errorf("hugepage limit %d without a page size: %w", h.Limit, errdefs.ErrInvalidArgument)
		}
	}
	r = limitsFor(r, in.Controllers)

	if r.CPUPeriod > 0 {
		g.SetLinuxResourcesCPUPeriod(uint64(r.CPUPeriod))
	}
	if r.CPUQuota != 0 {
		g.SetLinuxResourcesCPUQuota(r.CPUQuota)
	}
	if r.CPUShares > 0 {
		g.SetLinuxResourcesCPUShares(uint64(r.CPUShares))
	}
	if r.CpusetCpus != "" {
		g.SetLinuxResourcesCPUCpus(r.CpusetCpus)
	}
	if r.CpusetMems != "" {
		g.SetLinuxResourcesCPUMems(r.CpusetMems)
	}
	if r.MemoryLimit > 0 {
		g.SetLinuxResourcesMemoryLimit(r.MemoryLimit)
	}
	switch {
	case r.MemorySwapLimit != 0:
		g.SetLinuxResourcesMemorySwap(r.MemorySwapLimit)
	case r.MemoryLimit > 0:
		g.SetLinuxResourcesMemorySwap(r.MemoryLimit)
	}
	if r.PidsLimit > 0 {
		g.SetLinuxResourcesPidsLimit(r.PidsLimit)
	}
	for _, h := range r.Hugepages {
		g.AddLinuxResourcesHugepageLimit(h.PageSize, h.Limit)
	}
	if len(r.Unified) > 0 {
		g.SetLinuxResourcesUnified(maps.Clone(r.Unified))
	}
	return nil
}

// LinuxResources maps r to the runtime-spec's resources block alone, with
// the same rules as Build: what UpdateContainerResources hands to the OCI
// runtime for a running container.
func LinuxResources(r Resources, c Controllers) (*specs.LinuxResources, error) {
	g := generate.Generator{Config: &specs.Spec{}}
	if err := setResources(&g, Input{Resources: r, Controllers: c}); err != nil {
		return nil, err
	}
	if g.Config.Linux == nil || g.Config.Linux.Resources == nil {
		return &specs.LinuxResources{}, nil
	}
	return g.Config.Linux.Resources, nil
}

// MissingControllers names the controllers r sets limits through that are
// not in c, in a fixed order: the limits Build and LinuxResources leave out.
func MissingControllers(r Resources, c Controllers) []string {
	var out []string
	for _, u := range controllerUses(r) {
		if u.used && !c.Has(u.name) {
			out = append(out, u.name)
		}
	}
	return out
}

type controllerUse struct {
	name string
	used bool
	drop func(*Resources)
}

// controllerUses says, for each controller a limit in r can name, whether
// r names it and how to take its limits out.
func controllerUses(r Resources) []controllerUse {
	return []controllerUse{
		{"cpu", r.CPUPeriod != 0 || r.CPUQuota != 0 || r.CPUShares != 0, func(r *Resources) { r.CPUPeriod, r.CPUQuota, r.CPUShares = 0, 0, 0 }},
		{"cpuset", r.CpusetCpus != "" || r.CpusetMems != "", func(r *Resources) { r.CpusetCpus, r.CpusetMems = "", "" }},
		{"memory", r.MemoryLimit != 0 || r.MemorySwapLimit != 0, func(r *Resources) { r.MemoryLimit, r.MemorySwapLimit = 0, 0 }},
		{"pids", r.PidsLimit != 0, func(r *Resources) { r.PidsLimit = 0 }},
		{"hugetlb", len(r.Hugepages) > 0, func(r *Resources) { r.Hugepages = nil }},
	}
}

// limitsFor is r without the limits of controllers not in c.
func limitsFor(r Resources, c Controllers) Resources {
	for _, u := range controllerUses(r) {
		if u.used && !c.Has(u.name) {
			u.drop(&r)
		}
	}
	return r
}
