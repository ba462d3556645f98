package critest

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The relist load: the kubelet's steady work against a node of idle pods.
// Every second it lists the pods and the containers, asks each container's
// status, and lists the containers' and the pods' stats (the kubelet's
// PLEG relist, its status manager and the CRI stats provider, all at the
// fastest period). What that costs the runtime is CPU time of its daemon,
// measured from /proc/<pid>/stat (utime + stime, its children excluded) over
// a fixed period, and reported per minute. The per-pod processes (our
// conmons and pod inits, containerd's shims) are measured apart: containerd's
// shims read the cgroups for its stats, our daemon reads them itself.
//
// RELIST_PODS (100; 0 leaves the relist load out) pods of one sleeping
// container each run on both runtimes at once; the load then runs against
// each in turn, A B A B, BENCH_ROUNDS times, for RELIST_SECONDS (30) each.

// relistResult is one runtime's relist load measurements.
type relistResult struct {
	daemonCPU, podCPU []float64       // CPU seconds per minute, one per period
	cycles            []time.Duration // one relist each
}

// relistParams reads RELIST_PODS and RELIST_SECONDS.
func relistParams(t *testing.T) (pods int, period time.Duration) {
	t.Helper()
	pods = 100
	if v := os.Getenv("RELIST_PODS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			t.Fatalf("RELIST_PODS=%q: want a number, 0 to leave the relist load out", v)
		}
		pods = n
	}
	return pods, time.Duration(envInt(t, "RELIST_SECONDS", 30)) * time.Second
}

// startRelistPods runs n pods of one sleeping container each, each in a
// cgroup of its own as the kubelet makes them (containerd's pod stats need
// one), and returns their IDs. The cgroups are removed when the test ends.
func (s *subject) startRelistPods(t *testing.T, n int) []string {
	t.Helper()
	start := time.Now()
	top := fmt.Sprintf("crirt-relist-%s-%d", s.name, os.Getpid())
	t.Cleanup(func() { removeCgroups(t, top) })
	pods := make([]string, 0, n)
	for i := 0; i < n; i++ {
		pod, cfg := s.runPodIn(t, fmt.Sprintf("relist-%d", i), runtimeapi.NamespaceMode_CONTAINER, fmt.Sprintf("/%s/pod%d", top, i))
		pods = append(pods, pod)
		s.runContainer(t, pod, cfg, "c")
	}
	t.Logf("%s: %d pods of one container each running after %v", s.name, n, time.Since(start).Round(time.Second))
	return pods
}

// relistPeriod runs the relist once a second for period and records the
// CPU time the runtime used meanwhile.
func (s *subject) relistPeriod(t *testing.T, period time.Duration) {
	t.Helper()
	ctx := context.Background()
	perPod := s.ownProcesses()
	daemon0, err := cpuSeconds(s.pid)
	if err != nil {
		t.Fatalf("%s: %v", s.name, err)
	}
	pods0 := cpuOf(perPod)
	stop := s.profiles.start(t, fmt.Sprintf("relist-%d", len(s.relistRes.daemonCPU)))
	defer stop()
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for time.Since(start) < period {
		cycle := time.Now()
		s.relist(t, ctx)
		s.relistRes.cycles = append(s.relistRes.cycles, time.Since(cycle))
		<-tick.C
	}
	elapsed := time.Since(start)
	daemon1, err := cpuSeconds(s.pid)
	if err != nil {
		t.Fatalf("%s: %v", s.name, err)
	}
	perMinute := func(cpu float64) float64 { return cpu / elapsed.Minutes() }
	d, p := perMinute(daemon1-daemon0), perMinute(cpuOf(perPod)-pods0)
	s.relistRes.daemonCPU = append(s.relistRes.daemonCPU, d)
	s.relistRes.podCPU = append(s.relistRes.podCPU, p)
	t.Logf("%s: relist load over %v: daemon %.2f CPU s/min, per-pod processes %.2f CPU s/min", s.name, elapsed.Round(time.Second), d, p)
}

// relist is one round of the kubelet's calls.
func (s *subject) relist(t *testing.T, ctx context.Context) {
	t.Helper()
	if _, err := s.rt.ListPodSandbox(ctx, nil); err != nil {
		t.Fatalf("%s: ListPodSandbox: %v", s.name, err)
	}
	ctrs, err := s.rt.ListContainers(ctx, nil)
	if err != nil {
		t.Fatalf("%s: ListContainers: %v", s.name, err)
	}
	for _, c := range ctrs {
		if _, err := s.rt.ContainerStatus(ctx, c.Id, false); err != nil {
			t.Fatalf("%s: ContainerStatus: %v", s.name, err)
		}
	}
	if _, err := s.rt.ListContainerStats(ctx, nil); err != nil {
		t.Fatalf("%s: ListContainerStats: %v", s.name, err)
	}
	if _, err := s.rt.ListPodSandboxStats(ctx, nil); err != nil {
		t.Fatalf("%s: ListPodSandboxStats: %v", s.name, err)
	}
}

// cpuSeconds is the user and system CPU time process pid has used, its
// children's excluded: fields 14 and 15 of /proc/<pid>/stat, in clock ticks.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the parenthesised command name start at field 3.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the name", pid, len(f))
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q, stime %q", pid, f[11], f[12])
	}
	const userHZ = 100 // USER_HZ, fixed on Linux
	return float64(utime+stime) / userHZ, nil
}

// cpuOf sums the CPU time of the processes still there.
func cpuOf(ps []proc) float64 {
	var sum float64
	for _, p := range ps {
		if c, err := cpuSeconds(p.pid); err == nil {
			sum += c
		}
	}
	return sum
}

// relistTable renders the relist load of both runtimes as markdown.
func relistTable(ours, theirs *subject, pods int, period time.Duration, rounds int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n| relist load: %d pods, every second, %d × %v each | ours | containerd | ratio |\n|---|---|---|---|\n",
		pods, rounds, period)
	row := func(name string, o, c float64, unit string) {
		ratio := "-"
		if c > 0 {
			ratio = fmt.Sprintf("%.2f", o/c)
		}
		fmt.Fprintf(&b, "| %s | %.2f %s | %.2f %s | %s |\n", name, o, unit, c, unit, ratio)
	}
	row("daemon CPU per minute (median of periods)", medianF(ours.relistRes.daemonCPU), medianF(theirs.relistRes.daemonCPU), "s")
	row("per-pod processes' CPU per minute", medianF(ours.relistRes.podCPU), medianF(theirs.relistRes.podCPU), "s")
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	row("one relist, p50", ms(p50(ours.relistRes.cycles)), ms(p50(theirs.relistRes.cycles)), "ms")
	return b.String()
}

func medianF(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// removeCgroups removes the cgroup directory top, deepest first, in every
// hierarchy under /sys/fs/cgroup (what is still in use stays, and is logged).
func removeCgroups(t *testing.T, top string) {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/" + top)
	if v2 := filepath.Join("/sys/fs/cgroup", top); exists(v2) {
		roots = append(roots, v2)
	}
	seen := map[string]bool{}
	for _, root := range roots {
		if real, err := filepath.EvalSymlinks(root); err != nil || seen[real] {
			continue // cpu and cpuacct name one hierarchy
		} else {
			seen[real] = true
		}
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := os.Remove(dirs[i]); err != nil {
				t.Logf("remove cgroup %s: %v", dirs[i], err)
			}
		}
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
