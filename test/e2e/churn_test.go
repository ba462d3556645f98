package e2e

// Churn: eight clients, each on its own connection, run pods and containers
// through their whole life at the same time, over and over, against a daemon
// built with the race detector. No call may fail or hang, the daemon must
// report no data race, and afterwards nothing of theirs may be left on the
// host. CHURN_CYCLES sets the cycles per client; `make churn` runs 500.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

const (
	churnClients = 8
	// churnCallLimit is what the kubelet allows a runtime call; one that
	// takes longer is taken for a deadlock.
	churnCallLimit = 2 * time.Minute
	// churnDefaultCycles keeps the run in `make test` to about a minute on
	// two idle cores (the race build manages some 3 cycles a second).
	churnDefaultCycles = 20
)

func churnCycles(t *testing.T) int {
	t.Helper()
	s := os.Getenv("CHURN_CYCLES")
	if s == "" {
		return churnDefaultCycles
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("CHURN_CYCLES=%q: want a positive number", s)
	}
	return n
}

// churnClient is one of the concurrent clients. What it made is recorded so
// the test can look for it on the host afterwards.
type churnClient struct {
	n       int
	rt      internalapi.RuntimeService
	root    context.Context // cancelled by the watchdog
	logDir  string
	cgroups string // parent of the pods' cgroups, for odd clients

	traces []podTrace // every pod run, with its cgroup and nat chains
	ctrs   []string
	cycles atomic.Int64             // done
	slow   map[string]time.Duration // slowest answer per RPC

	mu    sync.Mutex
	step  string // the call in flight, for the watchdog
	since time.Time
}

// churnError names the client, cycle and RPC that failed; stuck says the
// call got no answer within churnCallLimit.
type churnError struct {
	client, cycle int
	rpc           string
	err           error
	stuck         bool
}

func (e *churnError) Error() string {
	s := fmt.Sprintf("client %d, cycle %d: %s: %v", e.client, e.cycle, e.rpc, e.err)
	if e.stuck {
		s += fmt.Sprintf(" (no answer in %v: deadlock?)", churnCallLimit)
	}
	return s
}

// call runs one RPC under its own deadline.
func (c *churnClient) call(cycle int, rpc string, f func(context.Context) error) error {
	start := time.Now()
	c.mu.Lock()
	c.step, c.since = fmt.Sprintf("cycle %d: %s", cycle, rpc), start
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(c.root, churnCallLimit)
	defer cancel()
	err := f(ctx)
	took := time.Since(start)
	c.mu.Lock()
	c.step = ""
	c.mu.Unlock()
	c.slow[rpc] = max(c.slow[rpc], took)
	if err != nil {
		return &churnError{client: c.n, cycle: cycle, rpc: rpc, err: err, stuck: errors.Is(ctx.Err(), context.DeadlineExceeded)}
	}
	return nil
}

// inFlight says what the client is waiting for, if anything.
func (c *churnClient) inFlight() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.step == "" {
		return ""
	}
	return fmt.Sprintf("client %d, %s for %v", c.n, c.step, time.Since(c.since).Round(time.Second))
}

func (c *churnClient) fail(cycle int, rpc, format string, args ...any) error {
	return &churnError{client: c.n, cycle: cycle, rpc: rpc, err: fmt.Errorf(format, args...)}
}

// cycle runs one pod with one container through its life. Teardown
// alternates between the kubelet's orderly way (stop and remove the
// container, stop and remove the pod) and removing the ready pod with its
// running container at once; half the pods map a host port (portmap's nat
// chains), and odd clients give their pods a cgroup parent of their own
// (the others get the daemon's default one).
func (c *churnClient) cycle(i int) (retErr error) {
	orderly := (c.n+i)%2 == 0
	name := fmt.Sprintf("churn-%d-%d", c.n, i)
	cfg := podConfig(name)
	cfg.LogDirectory = c.logDir
	if c.cgroups != "" {
		cfg.Linux.CgroupParent = "/" + filepath.Join(c.cgroups, "pod"+cfg.Metadata.Uid)
	}
	if (c.n+i/2)%2 == 0 {
		port, err := freePort()
		if err != nil {
			return c.fail(i, "free host port", "%v", err)
		}
		cfg.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: port}}
	}

	var pod string
	if err := c.call(i, "RunPodSandbox", func(ctx context.Context) (err error) {
		pod, err = c.rt.RunPodSandbox(ctx, cfg, "")
		return err
	}); err != nil {
		return err
	}
	tr := podTrace{id: pod}
	defer func() {
		c.traces = append(c.traces, tr)
		var ce *churnError
		if retErr != nil && c.root.Err() == nil && !(errors.As(retErr, &ce) && ce.stuck) {
			// Best effort, so that what leaks afterwards is the daemon's doing.
			_ = c.call(i, "RemovePodSandbox after a failure", func(ctx context.Context) error { return c.rt.RemovePodSandbox(ctx, pod) })
		}
	}()
	var ps *runtimeapi.PodSandboxStatusResponse
	if err := c.call(i, "PodSandboxStatus", func(ctx context.Context) (err error) {
		ps, err = c.rt.PodSandboxStatus(ctx, pod, true)
		return err
	}); err != nil {
		return err
	}
	var info struct {
		CgroupParent string `json:"cgroupParent"`
	}
	if err := json.Unmarshal([]byte(ps.GetInfo()["info"]), &info); err != nil || info.CgroupParent == "" || ps.GetStatus().GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
		return c.fail(i, "PodSandboxStatus", "state %v, cgroupParent %q (%v); want READY and the pod's cgroup", ps.GetStatus().GetState(), info.CgroupParent, err)
	}
	tr.cgroup = info.CgroupParent
	if len(cfg.PortMappings) > 0 {
		rules, err := natSave(c.root)
		if err != nil {
			return c.fail(i, "iptables-save", "%v", err)
		}
		if tr.chains = chainsOf(rules, pod); len(tr.chains) == 0 {
			return c.fail(i, "RunPodSandbox", "pod %s maps host port %d but no nat rule jumps from it to a chain of its own", pod, cfg.PortMappings[0].HostPort)
		}
	}

	ctrCfg := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "sleep"},
		Image:    spec(framework.BusyboxImage),
		Command:  []string{"sleep", "3600"},
		LogPath:  name + ".log",
		Linux:    ctrLinux(),
	}
	var ctr string
	if err := c.call(i, "CreateContainer", func(ctx context.Context) (err error) {
		ctr, err = c.rt.CreateContainer(ctx, pod, ctrCfg, cfg)
		return err
	}); err != nil {
		return err
	}
	c.ctrs = append(c.ctrs, ctr)
	if err := c.call(i, "StartContainer", func(ctx context.Context) error { return c.rt.StartContainer(ctx, ctr) }); err != nil {
		return err
	}
	var st *runtimeapi.ContainerStatusResponse
	if err := c.call(i, "ContainerStatus", func(ctx context.Context) (err error) {
		st, err = c.rt.ContainerStatus(ctx, ctr, false)
		return err
	}); err != nil {
		return err
	}
	if got := st.GetStatus().GetState(); got != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return c.fail(i, "ContainerStatus", "container %s is %v (exit %d, %q); want RUNNING", ctr, got, st.GetStatus().GetExitCode(), st.GetStatus().GetMessage())
	}
	var listed []*runtimeapi.Container
	if err := c.call(i, "ListContainers", func(ctx context.Context) (err error) {
		listed, err = c.rt.ListContainers(ctx, &runtimeapi.ContainerFilter{PodSandboxId: pod})
		return err
	}); err != nil {
		return err
	}
	if len(listed) != 1 || listed[0].Id != ctr {
		return c.fail(i, "ListContainers", "containers of pod %s: %v; want just %s", pod, listed, ctr)
	}
	if err := c.call(i, "ExecSync", func(ctx context.Context) error {
		_, stderr, err := c.rt.ExecSync(ctx, ctr, []string{"true"}, 30*time.Second)
		if err != nil && len(stderr) > 0 {
			err = fmt.Errorf("%w (stderr %q)", err, stderr)
		}
		return err
	}); err != nil {
		return err
	}

	if orderly {
		// sleep is PID 1 of its namespace and ignores SIGTERM: the stop
		// escalates to SIGKILL after the second.
		steps := []struct {
			rpc string
			f   func(context.Context) error
		}{
			{"StopContainer", func(ctx context.Context) error { return c.rt.StopContainer(ctx, ctr, 1) }},
			{"RemoveContainer", func(ctx context.Context) error { return c.rt.RemoveContainer(ctx, ctr) }},
			{"StopPodSandbox", func(ctx context.Context) error { return c.rt.StopPodSandbox(ctx, pod) }},
			{"RemovePodSandbox", func(ctx context.Context) error { return c.rt.RemovePodSandbox(ctx, pod) }},
		}
		for _, s := range steps {
			if err := c.call(i, s.rpc, s.f); err != nil {
				return err
			}
		}
		return nil
	}
	return c.call(i, "RemovePodSandbox (ready, container running)", func(ctx context.Context) error { return c.rt.RemovePodSandbox(ctx, pod) })
}

func TestChurn(t *testing.T) {
	// Not parallel: eight clients at full speed take both cores, and the
	// churn is meant to find the races of the daemon alone on the host.
	raceBuild(t)
	cycles := churnCycles(t)
	d := framework.StartDaemon(t, framework.Options{Binary: binaryFor(t), Args: []string{"--registries-conf", registriesConf}})
	// The logs of a daemon that had to be killed (see quit), for the race check.
	var earlierLogs string
	var clients []*churnClient
	cgroupTop := "crirt-churn-" + randomHex(4)
	// Registered before cleanupPods so that it runs after it: the daemon
	// stops once the pods are gone, and the race detector's report is in
	// its log once it has exited.
	t.Cleanup(func() {
		if err := d.Stop(syscall.SIGTERM, time.Minute); err != nil {
			t.Errorf("stop the daemon: %v", err)
		}
		if races := raceReports(earlierLogs + d.Logs()); len(races) > 0 {
			shown := races[:min(len(races), 5)]
			t.Errorf("the daemon reported %d data races; the first %d:\n%s", len(races), len(shown), strings.Join(shown, "\n"))
		} else if err := d.ExitErr(); err != nil {
			t.Errorf("daemon exit after SIGTERM: %v; want 0", err)
		}
		for _, c := range clients {
			for _, tr := range c.traces {
				if t.Failed() {
					purgeNatRules(t, tr.id)
				}
				if tr.cgroup != "" {
					rmdirCgroups(t, strings.TrimPrefix(tr.cgroup, "/"))
				}
			}
		}
		rmdirCgroups(t, cgroupTop)
	})
	cleanupPods(t, d)
	pull(t, d, framework.BusyboxImage, factsOf(t, framework.BusyboxImage))

	root, cancelAll := context.WithCancel(context.Background())
	defer cancelAll()
	for n := range churnClients {
		ctx, cancel := context.WithTimeout(root, 30*time.Second)
		rt, err := remote.NewRemoteRuntimeServiceBuilder().WithEndpoint("unix://" + d.Socket).
			WithConnectionTimeout(churnCallLimit).WithTracerProvider(nil).Build(ctx)
		cancel()
		if err != nil {
			t.Fatalf("client %d: connect: %v", n, err)
		}
		t.Cleanup(func() { _ = rt.Close(context.Background()) })
		c := &churnClient{n: n, rt: rt, root: root, logDir: t.TempDir(), slow: map[string]time.Duration{}}
		if n%2 == 1 {
			c.cgroups = cgroupTop
		}
		clients = append(clients, c)
	}

	// The watchdog: generous, but it fires before the test binary's own
	// timeout would, so that a hang is reported with what is in flight.
	limit := 5*time.Minute + time.Duration(cycles)*20*time.Second
	if dl, ok := t.Deadline(); ok {
		limit = min(limit, time.Until(dl)-2*time.Minute)
	}
	var stop atomic.Bool
	errs := make(chan error, churnClients)
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < cycles && !stop.Load(); i++ {
				if err := c.cycle(i); err != nil {
					stop.Store(true) // the others finish their cycle and stop
					errs <- err
					return
				}
				c.cycles.Add(1)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	progress := func() (n int64) {
		for _, c := range clients {
			n += c.cycles.Load()
		}
		return n
	}
	hung := false
	watchdog := time.After(limit)
	tick := time.NewTicker(time.Minute) // progress, for the long form
	defer tick.Stop()
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		case <-tick.C:
			n := progress()
			t.Logf("%d of %d cycles done, %.2f cycles/s", n, churnClients*cycles, float64(n)/time.Since(start).Seconds())
		case <-watchdog:
			var calls []string
			for _, c := range clients {
				if s := c.inFlight(); s != "" {
					calls = append(calls, s)
				}
			}
			t.Errorf("churn not done after %v; calls in flight:\n%s", limit, strings.Join(calls, "\n"))
			hung, finished = true, true
			stop.Store(true)
			cancelAll()
			<-done
		}
	}
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		var ce *churnError
		hung = hung || errors.As(err, &ce) && ce.stuck
		t.Error(err)
	}
	total := progress()
	slow := map[string]time.Duration{}
	for _, c := range clients {
		for rpc, took := range c.slow {
			slow[rpc] = max(slow[rpc], took)
		}
	}
	var slowest []string
	for rpc, took := range slow {
		slowest = append(slowest, fmt.Sprintf("%s %v", rpc, took.Round(time.Millisecond)))
	}
	slices.Sort(slowest)
	t.Logf("%d clients × %d cycles: %d cycles in %v, %.2f cycles/s; slowest answers: %s",
		churnClients, cycles, total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), strings.Join(slowest, ", "))
	if hung {
		earlierLogs = quit(t, d)
		t.FailNow()
	}
	checkChurnLeftNothing(t, d, clients)
}

// quit makes a hung daemon print its goroutines (SIGQUIT), shows them, and
// starts it again so that the test's cleanup can remove the pods. It
// returns the hung daemon's log.
func quit(t *testing.T, d *framework.Daemon) string {
	t.Helper()
	if pid := d.Pid(); pid != 0 {
		_ = syscall.Kill(pid, syscall.SIGQUIT)
	}
	_ = d.Wait(time.Minute)
	if d.Pid() != 0 {
		_ = d.Stop(syscall.SIGKILL, 10*time.Second)
	}
	logs := d.Logs()
	if i := strings.Index(logs, "SIGQUIT: quit"); i >= 0 {
		t.Logf("goroutines of the hung daemon:\n%s", logs[i:])
	}
	if err := d.Start(); err != nil {
		t.Logf("restart for cleanup: %v", err)
	}
	return logs
}

// checkChurnLeftNothing checks that nothing the clients made is left: not
// in the daemon's answers, its directories and store, nor on the host as
// mounts, IP leases, processes, nat rules and chains, or cgroups (a leaked
// container process would keep its pod's cgroup).
func checkChurnLeftNothing(t *testing.T, d *framework.Daemon, clients []*churnClient) {
	t.Helper()
	ids := map[string]bool{}
	var traces []podTrace
	for _, c := range clients {
		traces = append(traces, c.traces...)
		for _, tr := range c.traces {
			ids[tr.id] = true
		}
		for _, id := range c.ctrs {
			ids[id] = true
		}
	}
	if pods := listIDs(t, d, nil); len(pods) > 0 {
		t.Errorf("ListPodSandbox after the churn: %v; want none", pods)
	}
	if ctrs := d.ListCtrIDs(t, nil); len(ctrs) > 0 {
		t.Errorf("ListContainers after the churn: %v; want none", ctrs)
	}
	if cs := storageIDs(t, d); len(cs) > 0 {
		t.Errorf("containers left in the store: %v", cs)
	}
	if ls := leases(t, d.Root); len(ls) > 0 {
		t.Errorf("IP leases left: %v", ls)
	}
	checkNothingLeft(t, d)
	for _, m := range mountsUnder(t, d.Root) {
		if !strings.HasPrefix(m.Point, filepath.Join(d.Root, "storage")+"/") {
			t.Errorf("mount left under the root directory: %v", m)
		}
	}
	var files []string
	_ = filepath.WalkDir(d.Dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && ids[e.Name()] {
			files = append(files, p)
			if e.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	if len(files) > 0 {
		t.Errorf("%d files named by a removed pod or container left:\n%s", len(files), strings.Join(files, "\n"))
	}
	rules := natRules(t)
	var leftRules, leftCgroups []string
	for _, tr := range traces {
		leftRules = append(leftRules, linesWith(rules, append(tr.chains, tr.id)...)...)
		if tr.cgroup != "" {
			leftCgroups = append(leftCgroups, cgroupsNamed(t, strings.TrimPrefix(tr.cgroup, "/"))...)
		}
	}
	if len(leftRules) > 0 {
		t.Errorf("nat rules and chains of removed pods left:\n%s", strings.Join(leftRules, "\n"))
	}
	if len(leftCgroups) > 0 {
		t.Errorf("cgroups of removed pods left: %v", leftCgroups)
	}
}

// raceReports cuts the race detector's reports out of a log.
func raceReports(logs string) []string {
	const sep = "=================="
	var out []string
	for {
		i := strings.Index(logs, "WARNING: DATA RACE")
		if i < 0 {
			return out
		}
		logs = logs[i:]
		end := strings.Index(logs, sep)
		if end < 0 {
			end = len(logs)
		}
		out = append(out, logs[:end])
		logs = logs[end:]
	}
}

// natSave, chainsOf and freePort are natRules, natChains and freeHostPort
// for the clients' goroutines, which must not stop the test themselves.
func natSave(ctx context.Context) ([]string, error) {
	out, err := exec.CommandContext(ctx, "iptables-save", "-t", "nat").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("iptables-save: %v: %s", err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n"), nil
}

func chainsOf(rules []string, id string) []string {
	var out []string
	for _, l := range linesWith(rules, id) {
		f := strings.Fields(l)
		if j := slices.Index(f, "-j"); j >= 0 && j+1 < len(f) {
			if c := f[j+1]; strings.HasPrefix(c, "CNI-") && !strings.HasPrefix(c, "CNI-HOSTPORT-") && !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out
}

func freePort() (int32, error) {
	p, err := framework.FreePort()
	return int32(p), err
}
