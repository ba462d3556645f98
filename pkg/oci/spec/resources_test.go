package spec

import (
	"maps"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestResources(t *testing.T) {
	in := baseInput(t)
	in.Resources = Resources{
		CPUPeriod: 100000, CPUQuota: 50000, CPUShares: 512,
		MemoryLimit: 256 << 20, PidsLimit: 100,
		CpusetCpus: "0-1", CpusetMems: "0",
		Hugepages: []Hugepage{{PageSize: "2MB", Limit: 4 << 20}, {PageSize: "1GB", Limit: 1 << 30}},
		Unified:   map[string]string{"memory.high": "200000000"},
	}
	r := mustBuild(t, in).Linux.Resources

	if r.CPU == nil || *r.CPU.Period != 100000 || *r.CPU.Quota != 50000 || *r.CPU.Shares != 512 ||
		r.CPU.Cpus != "0-1" || r.CPU.Mems != "0" {
		t.Errorf("cpu = %+v", r.CPU)
	}
	if r.Memory == nil || *r.Memory.Limit != 256<<20 || *r.Memory.Swap != 256<<20 {
		t.Errorf("memory = %+v, want limit and swap 256MiB (no swap)", r.Memory)
	}
	if r.Pids == nil || r.Pids.Limit == nil || *r.Pids.Limit != 100 {
		t.Errorf("pids = %+v", r.Pids)
	}
	wantHuge := []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}, {Pagesize: "1GB", Limit: 1 << 30}}
	if len(r.HugepageLimits) != 2 || r.HugepageLimits[0] != wantHuge[0] || r.HugepageLimits[1] != wantHuge[1] {
		t.Errorf("hugepages = %+v", r.HugepageLimits)
	}
	if !maps.Equal(r.Unified, in.Resources.Unified) {
		t.Errorf("unified = %v", r.Unified)
	}

	t.Run("zero values stay unset", func(t *testing.T) {
		r := mustBuild(t, baseInput(t)).Linux.Resources
		if r.CPU != nil || r.Memory != nil || r.Pids != nil || r.HugepageLimits != nil || r.Unified != nil {
			t.Errorf("resources = %+v, want only the devices rules", r)
		}
	})

	for _, tc := range []struct {
		name        string
		limit, swap int64
		wantLimit   *int64
		wantSwap    *int64
	}{
		{"explicit swap", 100 << 20, 300 << 20, ptr(int64(100 << 20)), ptr(int64(300 << 20))},
		{"unlimited swap", 100 << 20, -1, ptr(int64(100 << 20)), ptr(int64(-1))},
		{"no limit no swap", 0, 0, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.Resources.MemoryLimit, in.Resources.MemorySwapLimit = tc.limit, tc.swap
			m := mustBuild(t, in).Linux.Resources.Memory
			if tc.wantLimit == nil {
				if m != nil {
					t.Errorf("memory = %+v, want unset", m)
				}
				return
			}
			if m == nil || *m.Limit != *tc.wantLimit || *m.Swap != *tc.wantSwap {
				t.Errorf("memory = %+v", m)
			}
		})
	}

	for _, tc := range []struct {
		name string
		res  Resources
	}{
		{"negative memory", Resources{MemoryLimit: -5}},
		{"negative shares", Resources{CPUShares: -1}},
		{"swap below -1", Resources{MemorySwapLimit: -2}},
		{"hugepage without size", Resources{Hugepages: []Hugepage{{Limit: 1}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.Resources = tc.res
			_, err := Build(in)
			wantInvalid(t, err)
		})
	}
}

func TestOOMScoreAdj(t *testing.T) {
	for _, tc := range []struct {
		name           string
		request, floor int
		want           int
	}{
		{"within range", 500, -999, 500},
		{"zero", 0, -999, 0},
		{"below the daemon is raised", -1000, -500, -500},
		{"guaranteed pod vs unprivileged daemon", -997, 0, 0},
		{"above kernel max is capped", 1200, -999, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.Resources.OOMScoreAdj, in.OOMScoreAdjMin = tc.request, tc.floor
			s := mustBuild(t, in)
			if s.Process.OOMScoreAdj == nil || *s.Process.OOMScoreAdj != tc.want {
				t.Errorf("oomScoreAdj = %v, want %d", s.Process.OOMScoreAdj, tc.want)
			}
		})
	}
}

func TestLinuxResources(t *testing.T) {
	got, err := LinuxResources(Resources{MemoryLimit: 64 << 20, CPUQuota: 50000, CPUPeriod: 100000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Memory == nil || *got.Memory.Limit != 64<<20 || *got.Memory.Swap != 64<<20 || *got.CPU.Quota != 50000 || *got.CPU.Period != 100000 {
		t.Fatalf("LinuxResources = %+v", got)
	}
	if len(got.Devices) != 0 {
		t.Fatalf("an update must not carry device rules: %+v", got.Devices)
	}
	if _, err := LinuxResources(Resources{MemoryLimit: -1}, nil); err == nil {
		t.Fatal("negative memory limit accepted")
	}
	empty, err := LinuxResources(Resources{}, nil)
	if err != nil || empty.Memory != nil || empty.CPU != nil {
		t.Fatalf("no limits = %+v, %v; want an empty block", empty, err)
	}
}

// A controller missing on the host (hugetlb only in the unified hierarchy
// of a cgroup v1 host) drops its limits instead of failing the create in
// runc; the others stay, and bad values are still rejected.
func TestResourcesMissingControllers(t *testing.T) {
	all := Resources{
		CPUPeriod: 100000, CPUQuota: 50000, CPUShares: 512, CpusetCpus: "0",
		MemoryLimit: 64 << 20, PidsLimit: 10,
		Hugepages: []Hugepage{{PageSize: "2MB", Limit: 0}, {PageSize: "1GB", Limit: 0}},
	}
	v1NoHugetlb := Controllers{"cpu": true, "cpuacct": true, "cpuset": true, "memory": true, "pids": true, "devices": true}

	in := baseInput(t)
	in.Resources, in.Controllers = all, v1NoHugetlb
	r := mustBuild(t, in).Linux.Resources
	if r.HugepageLimits != nil {
		t.Errorf("hugepages = %+v, want none without the hugetlb controller", r.HugepageLimits)
	}
	if r.CPU == nil || *r.CPU.Shares != 512 || r.CPU.Cpus != "0" || r.Memory == nil || *r.Memory.Limit != 64<<20 || r.Pids == nil {
		t.Errorf("resources = %+v, want the limits of present controllers kept", r)
	}
	if got := MissingControllers(all, v1NoHugetlb); !slices.Equal(got, []string{"hugetlb"}) {
		t.Errorf("MissingControllers = %v, want [hugetlb]", got)
	}

	for _, tc := range []struct {
		name string
		c    Controllers
		want []string
	}{
		{"nil means all", nil, nil},
		{"all present", Controllers{"cpu": true, "cpuset": true, "memory": true, "pids": true, "hugetlb": true}, nil},
		{"none present", Controllers{}, []string{"cpu", "cpuset", "memory", "pids", "hugetlb"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := MissingControllers(all, tc.c); !slices.Equal(got, tc.want) {
				t.Errorf("MissingControllers = %v, want %v", got, tc.want)
			}
			res, err := LinuxResources(all, tc.c)
			if err != nil {
				t.Fatal(err)
			}
			if hasHuge := res.HugepageLimits != nil; hasHuge != tc.c.Has("hugetlb") {
				t.Errorf("hugepages = %+v with controllers %v", res.HugepageLimits, tc.c)
			}
			if hasMem := res.Memory != nil; hasMem != tc.c.Has("memory") {
				t.Errorf("memory = %+v with controllers %v", res.Memory, tc.c)
			}
		})
	}

	t.Run("unused controllers are not missing", func(t *testing.T) {
		if got := MissingControllers(Resources{MemoryLimit: 1 << 20}, Controllers{"memory": true}); got != nil {
			t.Errorf("MissingControllers = %v, want none", got)
		}
	})
	t.Run("bad values of a missing controller are still rejected", func(t *testing.T) {
		in := baseInput(t)
		in.Controllers = Controllers{}
		in.Resources = Resources{Hugepages: []Hugepage{{Limit: 1}}}
		_, err := Build(in)
		wantInvalid(t, err)
		in.Resources = Resources{MemoryLimit: -5}
		_, err = Build(in)
		wantInvalid(t, err)
	})
}
