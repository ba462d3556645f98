package container

import (
	"github.com/cri-runtime/cri-runtime/pkg/cgroup"
	"github.com/cri-runtime/cri-runtime/pkg/oci"
)

// The values the container service hands out that another package defines,
// named here so that its clients (pkg/cri) depend on this service alone, not
// on the packages behind it. They are aliases: the same types, re-exported.

// CPUStats, MemoryStats and Sample are a cgroup reading, as Stats (and the
// pod's stats, which share them) report it.
type (
	CPUStats    = cgroup.CPUStats
	MemoryStats = cgroup.MemoryStats
	Sample      = cgroup.Sample
)

// StatsDetail says how much Stats reads: StatsUsage (CPU, memory and the
// writable layer, as the CRI's stats report them) or StatsMetrics (also the
// cgroup's processes, I/O, hugepages and pressure, for the CRI metrics).
type StatsDetail = cgroup.Detail

const (
	StatsUsage   = cgroup.DetailUsage
	StatsMetrics = cgroup.DetailAll
)

// Programs are the OCI runtime and monitor the service runs containers with,
// and whether they work.
type Programs = oci.Programs

// RuntimeFeatures are the optional features of a runtime handler's OCI
// runtime on this kernel.
type RuntimeFeatures = oci.Features

// CRIUStatus says whether checkpoint and restore work on this node, and if
// not why.
type CRIUStatus = oci.CRIUStatus
