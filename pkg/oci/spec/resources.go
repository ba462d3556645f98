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
		if h.PageSize == "" {
			return fmt.Errorf("hugepage limit %d without a page size: %w", h.Limit, errdefs.ErrInvalidArgument)
		}
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
func LinuxResources(r Resources) (*specs.LinuxResources, error) {
	g := generate.Generator{Config: &specs.Spec{}}
	if err := setResources(&g, Input{Resources: r}); err != nil {
		return nil, err
	}
	if g.Config.Linux == nil || g.Config.Linux.Resources == nil {
		return &specs.LinuxResources{}, nil
	}
	return g.Config.Linux.Resources, nil
}
