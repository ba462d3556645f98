package critest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// TestCompareContainerd runs critest -benchmark, ExecSync and a per-pod memory count against
// our daemon and containerd (CONTAINERD_BINARY, CONTAINERD_SHIM_BINARY: `make bench-compare`
// builds the version hack/bench/go.mod pins) in one run, alternating between them round by
// round, and prints a markdown table of medians with the ratio ours/containerd. Both use
// the same runc, CNI plugins and chain (on a bridge and subnet each) and images served from
// one test registry. Speed is reported, never asserted.
//
// BENCH_PROFILE names a directory for our daemon's CPU profiles and execution traces, in
// slices, during each critest round and relist period (profile_test.go).
//
// BENCH_ROUNDS (2) rounds of BENCH_SAMPLES (30) samples per operation each; BENCH_OUT names
// a file the table is also written to. Then the relist load (relist_test.go): RELIST_PODS
// (100; 0 for none) pods on each, the kubelet's relist every second for RELIST_SECONDS (30)
// per round, the daemons' CPU time per minute.
func TestCompareContainerd(t *testing.T) {
	ctrdBin, shim := os.Getenv("CONTAINERD_BINARY"), os.Getenv("CONTAINERD_SHIM_BINARY")
	critest := os.Getenv("CRITEST_BINARY")
	if ctrdBin == "" || shim == "" || critest == "" {
		t.Skip("CONTAINERD_BINARY, CONTAINERD_SHIM_BINARY and CRITEST_BINARY are not set; `make bench-compare` sets them")
	}
	if os.Geteuid() != 0 {
		t.Skip("the comparison runs both runtimes for real and needs root")
	}
	rounds, samples := envInt(t, "BENCH_ROUNDS", 2), envInt(t, "BENCH_SAMPLES", 30)
	relistPods, relistFor := relistParams(t)
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	binary, err := framework.BuildBinary(dir)
	if err != nil {
		t.Fatal(err)
	}
	helper := buildHelper(t, dir)
	reg, err := framework.StartRegistry(framework.RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	if _, err := reg.PushCritestImages(framework.DefaultBusyboxPath, helper); err != nil {
		t.Fatal(err)
	}
	registriesConf := filepath.Join(dir, "registries.conf")
	if err := reg.WriteRegistriesConfRedirecting(registriesConf, framework.CritestRegistries); err != nil {
		t.Fatal(err)
	}
	cniBinDirs := []string{"/usr/lib/cni", "/opt/cni/bin"}
	// The bridges the two networks make (below) outlive their pods; they go last.
	t.Cleanup(func() {
		for _, br := range []string{"crirtb0", "ctrdb0"} {
			_ = exec.Command("ip", "link", "delete", br).Run()
		}
	})

	// Ours, with the same chain as containerd's (not the built-in network, which leaves
	// out firewall and runs portmap only for pods that map ports).
	// Both runtimes keep their state on a tmpfs, as /run is on a node (here /tmp and /run are a disk).
	d := framework.NewDaemon(t, framework.Options{Binary: binary, StateOnTmpfs: true, Args: []string{
		"--registries-conf", registriesConf, "--log-level", "info", "--runtime", runc,
		"--cni-bin-dir", strings.Join(cniBinDirs, ":"),
	}})
	ourConflist := writeConflist(t, d.CNIConf, "crirt-bench", "crirtb0", "10.79.0.0/16", filepath.Join(d.Dir, "ipam"))
	profiles := profileOurs(t, d.Dir)
	if err := d.Start(); err != nil {
		t.Fatalf("start daemon: %v\n%s", err, d.Logs())
	}
	t.Cleanup(func() { removeLeftovers(t, d) })

	const sandboxImage = "registry.k8s.io/pause:3.9"
	c := startContainerd(t, containerdOptions{
		binary: ctrdBin, shim: shim, runc: runc, cniBinDirs: cniBinDirs, sandboxImage: sandboxImage,
		registry: reg.Addr(), redirect: framework.CritestRegistries,
	})
	writeConflist(t, c.cniConf, "ctrd-bench", "ctrdb0", "10.80.0.0/16", filepath.Join(c.dir, "ipam"))

	subjects := []*subject{
		{name: "ours", dir: d.Dir, socket: d.Socket, pid: d.Pid(), rt: d.Runtime, img: d.Images, profiles: profiles},
		{name: "containerd", dir: c.dir, socket: c.socket, pid: c.cmd.Process.Pid, rt: c.runtime, img: c.images},
	}
	ctx := context.Background()
	for _, s := range subjects {
		// Neither pays for the first pull inside a timed call.
		for _, img := range []string{sandboxImage, benchContainerImage} {
			if _, err := s.img.PullImage(ctx, &runtimeapi.ImageSpec{Image: img}, nil, nil); err != nil {
				t.Fatalf("%s: pull %s: %v", s.name, img, err)
			}
		}
		s.samples = map[string][]time.Duration{}
	}

	params := filepath.Join(dir, "bench-params.yaml")
	writeBenchParams(t, params, samples)
	for r := 0; r < rounds; r++ {
		for _, s := range subjects { // A B A B
			out := filepath.Join(dir, fmt.Sprintf("%s-%d", s.name, r))
			stop := s.profiles.start(t, fmt.Sprintf("critest-%d", r))
			runCritestBenchmark(t, critest, s, params, out)
			stop()
			s.execSync(t, samples)
		}
	}
	// The CNI chain alone, on our daemon's configuration (the same as containerd's but for
	// its bridge and subnet), as many times as each runtime ran a pod.
	floorAdd, floorDel := cniFloor(t, ourConflist, cniBinDirs, rounds*samples)
	for _, mode := range []runtimeapi.NamespaceMode{runtimeapi.NamespaceMode_CONTAINER, runtimeapi.NamespaceMode_POD} {
		for _, s := range subjects {
			s.perPodMemory(t, mode, 10)
		}
	}

	if relistPods > 0 {
		// Both nodes full at once, the load on each in turn (relist_test.go).
		podsOf := map[*subject][]string{}
		for _, s := range subjects {
			podsOf[s] = s.startRelistPods(t, relistPods)
			s.relist(t, ctx) // warm: neither pays for a first call's set-up in a period
		}
		for r := 0; r < rounds; r++ {
			for _, s := range subjects {
				s.relistPeriod(t, relistFor)
			}
		}
		for _, s := range subjects {
			for _, pod := range podsOf[s] {
				s.removePod(t, pod)
			}
		}
	}

	table := compareTable(subjects[0], subjects[1], rounds, samples) + floorTable(subjects[0], subjects[1], floorAdd, floorDel)
	if relistPods > 0 {
		table += relistTable(subjects[0], subjects[1], relistPods, relistFor, rounds)
	}
	fmt.Println(table)
	if out := os.Getenv("BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(table), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// benchContainerImage is critest's default container image, which its container benchmarks run.
const benchContainerImage = "registry.k8s.io/e2e-test-images/busybox:1.29-2"

// subject is one runtime under comparison and what was measured of it.
type subject struct {
	name, dir, socket string
	pid               int
	rt                internalapi.RuntimeService
	img               internalapi.ImageManagerService
	samples           map[string][]time.Duration // operation → durations
	pss               map[string]float64         // PID mode → kB per pod
	relistRes         relistResult
	profiles          *profiler // nil unless BENCH_PROFILE asks for our daemon's profiles
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// writeConflist writes the usual node network (bridge with host-local addresses and
// masquerading, portmap, firewall) to confDir, on a bridge and subnet of the runtime's own.
func writeConflist(t *testing.T, confDir, name, bridge, subnet, dataDir string) (path string) {
	t.Helper()
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       name,
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": true, "hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": subnet}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": dataDir,
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
			map[string]any{"type": "firewall"},
		},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(confDir, "10-bench.conflist")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeBenchParams writes critest's benchmarking parameters: n samples of the pod, container
// and image lifecycles, one at a time, pulling a small image from the local registry.
func writeBenchParams(t *testing.T, path string, n int) {
	t.Helper()
	params := fmt.Sprintf(`containersNumber: %[1]d
containersNumberParallel: 1
containerBenchmarkTimeoutSeconds: 600
podsNumber: %[1]d
podsNumberParallel: 1
podBenchmarkTimeoutSeconds: 600
imagesNumber: %[1]d
imagesNumberParallel: 1
imageBenchmarkTimeoutSeconds: 600
imagePullingBenchmarkImage: gcr.io/k8s-staging-cri-tools/test-image-1:latest
imageListingBenchmarkImages:
  - gcr.io/k8s-staging-cri-tools/test-image-2:latest
podContainerStartBenchmarkTimeoutSeconds: 600
`, n)
	if err := os.WriteFile(path, []byte(params), 0o644); err != nil {
		t.Fatal(err)
	}
}

// critestOps maps critest's operation names to the CRI calls they time.
var critestOps = map[string]string{
	"CreatePod": "RunPodSandbox", "StatusPod": "PodSandboxStatus", "StopPod": "StopPodSandbox", "RemovePod": "RemovePodSandbox",
	"CreateContainer": "CreateContainer", "StartContainer": "StartContainer", "StatusContainer": "ContainerStatus",
	"StopContainer": "StopContainer", "RemoveContainer": "RemoveContainer",
	"PullImage": "PullImage", "StatusImage": "ImageStatus", "RemoveImage": "RemoveImage", "ListImages": "ListImages",
}

// runCritestBenchmark runs critest -benchmark against s and adds its samples to s.samples.
func runCritestBenchmark(t *testing.T, critest string, s *subject, params, outDir string) {
	t.Helper()
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	endpoint := "unix://" + s.socket
	cmd := exec.Command(critest, "-benchmark",
		"-runtime-endpoint", endpoint, "-image-endpoint", endpoint,
		"-config", filepath.Join(outDir, "crictl.yaml"),
		"-benchmarking-params-file", params, "-benchmarking-output-dir", outDir,
		"-ginkgo.no-color")
	cmd.Dir = outDir
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("critest -benchmark against %s: %v\n%s", s.name, err, tailString(string(out), 60))
	}
	t.Logf("critest -benchmark against %s: %v", s.name, time.Since(start).Round(time.Second))
	files, _ := filepath.Glob(filepath.Join(outDir, "*.json"))
	if len(files) == 0 {
		t.Fatalf("critest -benchmark against %s wrote no results:\n%s", s.name, tailString(string(out), 60))
	}
	for _, f := range files {
		var res struct {
			OperationsNames []string `json:"operationsNames"`
			Datapoints      []struct {
				OperationsDurationsNs []int64 `json:"operationsDurationsNs"`
			} `json:"datapoints"`
		}
		b, err := os.ReadFile(f)
		if err == nil {
			err = json.Unmarshal(b, &res)
		}
		if err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
		for _, dp := range res.Datapoints {
			for i, ns := range dp.OperationsDurationsNs {
				if i < len(res.OperationsNames) {
					op := critestOps[res.OperationsNames[i]]
					if op == "" {
						op = res.OperationsNames[i]
					}
					s.samples[op] = append(s.samples[op], time.Duration(ns))
				}
			}
		}
	}
}

// execSync times n ExecSync calls of `true` in a running container, as the kubelet's exec
// probes make them.
func (s *subject) execSync(t *testing.T, n int) {
	t.Helper()
	ctx := context.Background()
	pod, podCfg := s.runPod(t, "exec", runtimeapi.NamespaceMode_CONTAINER)
	defer s.removePod(t, pod)
	id := s.runContainer(t, pod, podCfg, "c")
	for i := 0; i < n; i++ {
		start := time.Now()
		if _, _, err := s.rt.ExecSync(ctx, id, []string{"true"}, 10*time.Second); err != nil {
			t.Fatalf("%s: ExecSync: %v", s.name, err)
		}
		s.samples["ExecSync"] = append(s.samples["ExecSync"], time.Since(start))
	}
}

func (s *subject) runPod(t *testing.T, name string, pid runtimeapi.NamespaceMode) (string, *runtimeapi.PodSandboxConfig) {
	t.Helper()
	return s.runPodIn(t, name, pid, "")
}

// runPodIn runs a pod; a cgroupParent not "" is the pod's cgroup under which
// the runtime puts its containers, as the kubelet gives every pod.
func (s *subject) runPodIn(t *testing.T, name string, pid runtimeapi.NamespaceMode, cgroupParent string) (string, *runtimeapi.PodSandboxConfig) {
	t.Helper()
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "bench", Uid: fmt.Sprintf("%s-%d", name, time.Now().UnixNano())},
		LogDirectory: filepath.Join(s.dir, "podlogs", name),
		Linux: &runtimeapi.LinuxPodSandboxConfig{CgroupParent: cgroupParent, SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: pid},
		}},
	}
	if err := os.MkdirAll(cfg.LogDirectory, 0o755); err != nil {
		t.Fatal(err)
	}
	id, err := s.rt.RunPodSandbox(context.Background(), cfg, "")
	if err != nil {
		t.Fatalf("%s: RunPodSandbox: %v", s.name, err)
	}
	return id, cfg
}

// benchSleep is the containers' command, told apart from the runtimes' own processes by it.
var benchSleep = []string{"/bin/sleep", "86399"}

func (s *subject) runContainer(t *testing.T, pod string, podCfg *runtimeapi.PodSandboxConfig, name string) string {
	t.Helper()
	ctx := context.Background()
	id, err := s.rt.CreateContainer(ctx, pod, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: benchContainerImage},
		Command:  benchSleep,
		LogPath:  name + ".log",
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: podCfg.Linux.SecurityContext.NamespaceOptions,
		}},
	}, podCfg)
	if err != nil {
		t.Fatalf("%s: CreateContainer: %v", s.name, err)
	}
	if err := s.rt.StartContainer(ctx, id); err != nil {
		t.Fatalf("%s: StartContainer: %v", s.name, err)
	}
	return id
}

func (s *subject) removePod(t *testing.T, id string) {
	t.Helper()
	ctx := context.Background()
	if err := s.rt.StopPodSandbox(ctx, id); err != nil {
		t.Errorf("%s: StopPodSandbox: %v", s.name, err)
	}
	if err := s.rt.RemovePodSandbox(ctx, id); err != nil {
		t.Errorf("%s: RemovePodSandbox: %v", s.name, err)
	}
}

// perPodMemory runs n pods of one sleeping container each with the given PID mode and
// records the proportional set size of the runtime's per-pod processes (monitors, shims,
// pod inits: everything the runtime started for them but the containers' own processes),
// per pod. The daemons themselves are not counted.
func (s *subject) perPodMemory(t *testing.T, mode runtimeapi.NamespaceMode, n int) {
	t.Helper()
	var pods []string
	for i := 0; i < n; i++ {
		pod, cfg := s.runPod(t, fmt.Sprintf("mem-%d", i), mode)
		pods = append(pods, pod)
		s.runContainer(t, pod, cfg, "c")
	}
	time.Sleep(2 * time.Second) // let start-up work (runc, CNI plugins) finish
	var total float64
	var count int
	for _, p := range s.ownProcesses() {
		kb, err := pssKB(p.pid)
		if err != nil {
			continue // gone meanwhile
		}
		total += kb
		count++
	}
	for _, pod := range pods {
		s.removePod(t, pod)
	}
	if s.pss == nil {
		s.pss = map[string]float64{}
	}
	s.pss[mode.String()] = total / float64(n)
	t.Logf("%s, PID mode %v: %d processes for %d pods, %.0f kB PSS per pod", s.name, mode, count, n, total/float64(n))
}

// ownProcesses returns the runtime's per-pod processes: the daemon's descendants and the
// processes naming the runtime's directory (monitors and shims, which leave the daemon's
// tree) with their descendants, less the daemon itself and the containers' sleeps.
func (s *subject) ownProcesses() []proc {
	all := processes()
	children := map[int][]proc{}
	for _, p := range all {
		children[p.ppid] = append(children[p.ppid], p)
	}
	seen := map[int]bool{}
	var out []proc
	var walk func(p proc)
	walk = func(p proc) {
		if seen[p.pid] {
			return
		}
		seen[p.pid] = true
		if p.pid != s.pid && p.cmdline != strings.Join(benchSleep, " ") {
			out = append(out, p)
		}
		for _, c := range children[p.pid] {
			walk(c)
		}
	}
	for _, p := range all {
		if p.pid == s.pid || strings.Contains(p.cmdline, s.dir) {
			walk(p)
		}
	}
	return out
}

type proc struct {
	pid, ppid int
	cmdline   string
}

// processes lists the host's processes.
func processes() []proc {
	ents, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// ppid is the second field after the parenthesised command name.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		out = append(out, proc{pid: pid, ppid: ppid, cmdline: strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))})
	}
	return out
}

// pssKB reads a process's proportional set size from smaps_rollup.
func pssKB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "Pss:" {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, fmt.Errorf("no Pss in /proc/%d/smaps_rollup", pid)
}

func p50(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// compareTable renders the medians of both runtimes and their ratios as markdown.
func compareTable(ours, theirs *subject, rounds, samples int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %s, %d cores; %d rounds A B A B, %d samples per round; p50\n\n",
		time.Now().Format("2006-01-02"), cpuModel(), runtime.NumCPU(), rounds, samples)
	b.WriteString("| op | ours ms | containerd ms | ratio |\n|---|---|---|---|\n")
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	row := func(name string, o, c time.Duration) {
		ratio := "-"
		if c > 0 {
			ratio = fmt.Sprintf("%.2f", float64(o)/float64(c))
		}
		fmt.Fprintf(&b, "| %s | %.1f | %.1f | %s |\n", name, ms(o), ms(c), ratio)
	}
	order := []string{"RunPodSandbox", "PodSandboxStatus", "StopPodSandbox", "RemovePodSandbox",
		"CreateContainer", "StartContainer", "ContainerStatus", "StopContainer", "RemoveContainer",
		"ExecSync", "PullImage", "ImageStatus", "RemoveImage", "ListImages"}
	for _, op := range order {
		if _, ok := ours.samples[op]; ok {
			row(op, p50(ours.samples[op]), p50(theirs.samples[op]))
		}
	}
	sum := func(s *subject, ops ...string) time.Duration {
		var d time.Duration
		for _, op := range ops {
			d += p50(s.samples[op])
		}
		return d
	}
	start := []string{"RunPodSandbox", "CreateContainer", "StartContainer"}
	teardown := []string{"StopContainer", "RemoveContainer", "StopPodSandbox", "RemovePodSandbox"}
	row("pod start (run + create + start)", sum(ours, start...), sum(theirs, start...))
	row("teardown (stop + remove container, stop + remove pod)", sum(ours, teardown...), sum(theirs, teardown...))
	b.WriteString("\n| per-pod memory (PSS, 10 pods) | ours MB | containerd MB | ratio |\n|---|---|---|---|\n")
	for _, mode := range []string{"CONTAINER", "POD"} {
		o, c := ours.pss[mode], theirs.pss[mode]
		ratio := "-"
		if c > 0 {
			ratio = fmt.Sprintf("%.2f", o/c)
		}
		fmt.Fprintf(&b, "| PID namespace %s | %.2f | %.2f | %s |\n", strings.ToLower(mode), o/1024, c/1024, ratio)
	}
	return b.String()
}

// cpuModel is the machine's CPU as /proc/cpuinfo names it.
func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func tailString(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
