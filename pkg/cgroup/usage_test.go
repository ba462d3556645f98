package cgroup

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
)

func TestMemoryStats(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   cgroups.MemoryStats
		want MemoryStats
	}{{
		name: "v1",
		in: cgroups.MemoryStats{
			Usage:       cgroups.MemoryData{Usage: 100, MaxUsage: 150, Failcnt: 3, Limit: 1000},
			SwapUsage:   cgroups.MemoryData{Usage: 130}, // memory+swap
			KernelUsage: cgroups.MemoryData{Usage: 7},
			Stats: map[string]uint64{
				"total_rss": 40, "total_cache": 50, "total_mapped_file": 5, "total_inactive_file": 20,
				"total_pgfault": 11, "total_pgmajfault": 2, "pgfault": 9, "pgmajfault": 1,
				"cache": 1, "rss": 1, // the cgroup's own, not its descendants': not reported
			},
		},
		want: MemoryStats{
			UsageBytes: 100, MaxUsageBytes: 150, Failcnt: 3, WorkingSetBytes: 80, RSSBytes: 40, CacheBytes: 50,
			MappedFileBytes: 5, SwapBytes: 30, KernelBytes: 7,
			PageFaults: 11, MajorPageFaults: 2, OwnPageFaults: 9, OwnMajorPageFaults: 1,
		},
	}, {
		name: "v2",
		in: cgroups.MemoryStats{
			Usage:         cgroups.MemoryData{Usage: 100, MaxUsage: 120, Limit: 1<<63 - 1},
			SwapUsage:     cgroups.MemoryData{Usage: 104},
			SwapOnlyUsage: cgroups.MemoryData{Usage: 4},
			Stats: map[string]uint64{
				"anon": 40, "file": 50, "file_mapped": 6, "inactive_file": 30, "kernel_stack": 1, "pagetables": 2, "slab": 3,
				"pgfault": 12, "pgmajfault": 3,
			},
		},
		want: MemoryStats{
			UsageBytes: 100, MaxUsageBytes: 120, WorkingSetBytes: 70, RSSBytes: 40, CacheBytes: 50,
			MappedFileBytes: 6, SwapBytes: 4, KernelBytes: 6,
			PageFaults: 12, MajorPageFaults: 3, OwnPageFaults: 12, OwnMajorPageFaults: 3,
		},
	}, {
		name: "v2 kernel counter",
		in:   cgroups.MemoryStats{Usage: cgroups.MemoryData{Usage: 10}, Stats: map[string]uint64{"kernel": 9, "slab": 3}},
		want: MemoryStats{UsageBytes: 10, WorkingSetBytes: 10, KernelBytes: 9},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := memoryStats(&cgroups.Stats{MemoryStats: tc.in})
			avail := got.AvailableBytes
			got.AvailableBytes = nil
			if *got != tc.want {
				t.Errorf("memoryStats =\n %+v; want\n %+v", *got, tc.want)
			}
			if tc.in.Usage.Limit == 1000 && (avail == nil || *avail != 1000-tc.want.WorkingSetBytes) {
				t.Errorf("available = %v; want the limit less the working set", avail)
			}
		})
	}
}

func TestTaskStats(t *testing.T) {
	proc := t.TempDir()
	mk := func(pid string, threads int, fds map[string]string) {
		for i := range threads {
			if err := os.MkdirAll(filepath.Join(proc, pid, "task", string(rune('a'+i))), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.MkdirAll(filepath.Join(proc, pid, "fd"), 0o755); err != nil {
			t.Fatal(err)
		}
		for fd, target := range fds {
			if err := os.Symlink(target, filepath.Join(proc, pid, "fd", fd)); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk("10", 3, map[string]string{"0": "/dev/null", "1": "socket:[123]", "2": "pipe:[9]"})
	mk("11", 1, map[string]string{"0": "socket:[5]"})
	got := taskStats(proc, []int{10, 11, 12}) // 12 exited meanwhile
	want := TaskStats{Processes: 3, Threads: 4, FileDescriptors: 4, Sockets: 2}
	if *got != want {
		t.Fatalf("taskStats = %+v; want %+v", *got, want)
	}
}

func TestDeviceIO(t *testing.T) {
	got := deviceIO(cgroups.BlkioStats{
		IoServiceBytesRecursive: []cgroups.BlkioStatEntry{
			{Major: 8, Minor: 0, Op: "Read", Value: 4096},
			{Major: 8, Minor: 0, Op: "Write", Value: 8192},
			{Major: 8, Minor: 0, Op: "Total", Value: 12288}, // v1 sums: not another operation
			{Major: 253, Minor: 9999, Op: "Write", Value: 512},
		},
		IoServicedRecursive: []cgroups.BlkioStatEntry{
			{Major: 8, Minor: 0, Op: "Read", Value: 1},
			{Major: 8, Minor: 0, Op: "Write", Value: 2},
			{Major: 253, Minor: 9999, Op: "Write", Value: 1},
		},
	})
	if len(got) != 2 {
		t.Fatalf("deviceIO = %+v; want two devices", got)
	}
	a, b := got[0], got[1]
	a.Device, b.Device = "", ""
	if (a != DeviceIO{Major: 8, ReadBytes: 4096, Reads: 1, WriteBytes: 8192, Writes: 2}) ||
		(b != DeviceIO{Major: 253, Minor: 9999, WriteBytes: 512, Writes: 1}) {
		t.Fatalf("deviceIO = %+v", got)
	}
	if got[1].Device != "253:9999" {
		t.Errorf("a device without a node is named %q; want major:minor", got[1].Device)
	}
}

func TestDeviceName(t *testing.T) {
	sys := t.TempDir()
	dir := filepath.Join(sys, "dev", "block", "8:16")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "uevent"), []byte("MAJOR=8\nMINOR=16\nDEVNAME=sdb\nDEVTYPE=disk\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := deviceName(sys, 8, 16); got != "/dev/sdb" {
		t.Errorf("deviceName = %q; want /dev/sdb", got)
	}
	if got := deviceName(sys, 7, 1); got != "7:1" {
		t.Errorf("deviceName of an unknown device = %q; want 7:1", got)
	}
}

func TestFlatKeyed(t *testing.T) {
	p := filepath.Join(t.TempDir(), "memory.events")
	if err := os.WriteFile(p, []byte("low 0\nhigh 2\nmax 5\noom 1\noom_kill 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := flatKeyed(p)
	if got["max"] != 5 || got["oom_kill"] != 1 || len(got) != 5 {
		t.Errorf("flatKeyed = %v", got)
	}
	if got := flatKeyed(p + ".missing"); len(got) != 0 {
		t.Errorf("a missing file = %v; want empty", got)
	}
}

func TestReadUsageV2(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"cpu.stat":       "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\n",
		"memory.stat":    "anon 4096\nfile 8192\ninactive_file 2048\npgfault 7\npgmajfault 1\n",
		"memory.current": "12288\n",
		"memory.max":     "max\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st := cgroups.Stats{MemoryStats: cgroups.MemoryStats{Stats: map[string]uint64{}}}
	if err := readUsageV2(dir, &st); err != nil {
		t.Fatal(err)
	}
	cpu, mem := cpuStats(&st), memoryStats(&st)
	if cpu.UsageCoreNanoSeconds != 1500000 || cpu.UserNanoSeconds != 1000000 || cpu.SystemNanoSeconds != 500000 {
		t.Errorf("cpu = %+v", cpu)
	}
	if mem.UsageBytes != 12288 || mem.WorkingSetBytes != 10240 || mem.RSSBytes != 4096 || mem.PageFaults != 7 || mem.AvailableBytes != nil {
		t.Errorf("memory = %+v", mem)
	}
	if err := os.Remove(filepath.Join(dir, "memory.current")); err != nil {
		t.Fatal(err)
	}
	if err := readUsageV2(dir, &st); err == nil {
		t.Error("a cgroup without memory.current read without an error")
	}
}

// Usage reads the same counters Stats does, from fewer files: on a cgroup
// with a busy process in it, its CPU time lies between two full readings,
// and both see the same memory limit.
func TestUsageAgreesWithStats(t *testing.T) {
	path := busyCgroup(t)
	var samples Sampler
	before, err := Stats(&samples, path)
	if err != nil {
		t.Fatal(err)
	}
	u, err := Usage(&samples, path)
	if err != nil {
		t.Fatal(err)
	}
	after, err := Stats(&samples, path)
	if err != nil {
		t.Fatal(err)
	}
	if c := u.CPU.UsageCoreNanoSeconds; c == 0 || c < before.CPU.UsageCoreNanoSeconds || c > after.CPU.UsageCoreNanoSeconds {
		t.Errorf("Usage CPU %d not between Stats' %d and %d", c, before.CPU.UsageCoreNanoSeconds, after.CPU.UsageCoreNanoSeconds)
	}
	if u.Memory.UsageBytes == 0 {
		t.Error("Usage reports no memory in use")
	}
	if (u.Memory.AvailableBytes == nil) != (after.Memory.AvailableBytes == nil) {
		t.Errorf("Usage and Stats disagree on a memory limit: %v, %v", u.Memory.AvailableBytes, after.Memory.AvailableBytes)
	}
	if u.Tasks != nil || u.IO != nil {
		t.Error("Usage read more than CPU and memory")
	}
	if _, err := Usage(&samples, path+"/no-such-cgroup"); err == nil {
		t.Error("Usage of a missing cgroup returned no error")
	}
}

// busyCgroup is a new cgroup with a process spinning in it, both removed
// when the test ends.
func busyCgroup(t testing.TB) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating cgroups needs root")
	}
	path := fmt.Sprintf("/crirt-unit-usage-%d", os.Getpid())
	top, err := Ensure(path)
	if err != nil {
		t.Fatal(err)
	}
	// It allocates as it spins: on v1 only memory used after the move is
	// charged to the cgroup.
	cmd := exec.Command("sh", "-c", `x=; while :; do x="$x."; done`)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = Remove(path, top)
	})
	m, err := manage(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // some CPU time and memory to count
	return path
}

func BenchmarkUsage(b *testing.B) {
	benchRead(b, Usage)
}

func BenchmarkStats(b *testing.B) {
	benchRead(b, Stats)
}

func benchRead(b *testing.B, read func(*Sampler, string) (*Sample, error)) {
	path := busyCgroup(b)
	var samples Sampler
	for b.Loop() {
		if _, err := read(&samples, path); err != nil {
			b.Skip(err)
		}
	}
}
