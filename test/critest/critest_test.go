// Package critest runs cri-tools' validation suite (critest) against the real daemon, with
// every image it pulls built here and served from an in-process registry, and fails on any
// failed spec that known-failures.txt does not list.
//
// It needs root, $CRITEST_BINARY (bin/critest, which `make critest` builds from hack/tools)
// and the daemon ($CRI_RUNTIME_BINARY, or a fresh build). $CRITEST_ARGS adds flags to critest,
// e.g. CRITEST_ARGS='-ginkgo.focus=Networking'; CRITEST_VERBOSE=1 streams critest's output;
// CRITEST_ARTIFACTS=<dir> keeps its output and JSON report there.
package critest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// knownFailuresFile lists the specs that cannot pass on this harness, whatever the daemon does.
const knownFailuresFile = "known-failures.txt"

func TestCritest(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("critest runs the daemon for real and needs root (sudo make critest)")
		}
		t.Skip("critest runs the daemon for real and needs root (sudo make critest)")
	}
	critest := os.Getenv("CRITEST_BINARY")
	if critest == "" {
		t.Skip("CRITEST_BINARY is not set; `make critest` builds bin/critest and runs this test")
	}
	critest, err := filepath.Abs(critest)
	if err != nil {
		t.Fatal(err)
	}
	known, err := readKnownFailures(knownFailuresFile)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	binary, err := framework.BuildBinary(dir)
	if err != nil {
		t.Fatal(err)
	}
	registriesConf := filepath.Join(dir, "registries.conf")
	serveImages(t, dir, registriesConf)

	d := framework.StartDaemon(t, framework.Options{
		Binary: binary,
		// Info, not the framework's debug: the whole log is printed when the test fails.
		Args: []string{"--registries-conf", registriesConf, "--log-level", "info"},
	})
	// Runs before the framework stops the daemon and checks for leaks (cleanups are LIFO).
	t.Cleanup(func() { removeLeftovers(t, d) })

	reportPath := filepath.Join(dir, "critest-report.json")
	shmBefore := shmSegments(t)
	out, runErr := runCritest(t, critest, d.Socket, dir, reportPath)
	removeNewShm(t, shmBefore)
	if path := os.Getenv("CRITEST_ARTIFACTS"); path != "" {
		saveArtifacts(t, path, out, reportPath)
	}
	reports, err := readReport(reportPath)
	if err != nil {
		t.Fatalf("critest produced no report (%v; exit: %v); the end of its output:\n%s", err, runErr, tail(out, 60))
	}
	sum := summarize(reports, known)
	t.Log(sum.text())
	if line := critestTally(out); line != "" {
		t.Logf("critest's own tally: %s", line)
	}
	if len(sum.specs) == 0 {
		t.Fatalf("critest ran no specs (exit: %v); the end of its output:\n%s", runErr, tail(out, 60))
	}
	for _, k := range sum.knownPassed {
		t.Logf("known limit now passes, remove it from %s: %s", knownFailuresFile, k)
	}
	for _, k := range known {
		if !slices.ContainsFunc(sum.specs, func(r specReport) bool { return k.matches(r.name()) }) {
			t.Logf("%s: %q names no spec critest reported; update or remove it", knownFailuresFile, k.spec)
		}
	}
	if len(sum.unexpected) > 0 {
		t.Errorf("%d critest specs failed that %s does not list (critest's full output: %s)",
			len(sum.unexpected), knownFailuresFile, logHint())
	} else if runErr != nil && sum.failed == 0 {
		t.Errorf("critest failed with no failed spec: %v; the end of its output:\n%s", runErr, tail(out, 60))
	}
}

// TestServeCritestImages, with CRITEST_SERVE_IMAGES=<path>, serves critest's images and
// writes a registries.conf leading to them at path, then waits for an interrupt (or the test
// timeout): for running bin/critest by hand against a daemon started with
// --registries-conf <path>. `make critest-images` runs it.
func TestServeCritestImages(t *testing.T) {
	path := os.Getenv("CRITEST_SERVE_IMAGES")
	if path == "" {
		t.Skip("CRITEST_SERVE_IMAGES is not set")
	}
	serveImages(t, t.TempDir(), path)
	fmt.Printf("critest images served; start the daemon with --registries-conf %s and run bin/critest; interrupt to stop\n", path)
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(c)
	timeout := time.Hour
	if deadline, ok := t.Deadline(); ok {
		timeout = time.Until(deadline) - 10*time.Second
	}
	select {
	case <-c:
	case <-time.After(timeout):
	}
}

// serveImages builds critest's images, serves them from an in-process registry that is
// closed when the test ends, and writes registriesConf to redirect critest's registries there.
func serveImages(t *testing.T, dir, registriesConf string) {
	t.Helper()
	helper := buildHelper(t, dir)
	reg, err := framework.StartRegistry(framework.RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	images, err := reg.PushCritestImages(framework.DefaultBusyboxPath, helper)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range images {
		t.Logf("serving %s (%s) as %s", ti.Name, ti.Digest, reg.Ref(ti.Repo, ti.Tag))
	}
	if err := reg.WriteRegistriesConfRedirecting(registriesConf, framework.CritestRegistries); err != nil {
		t.Fatal(err)
	}
}

// buildHelper builds test/critest/imagebin, static and without build IDs or paths, so that
// the images holding it are the same from one run to the next.
func buildHelper(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "imagebin")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -buildid=", "-o", out, "./imagebin")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build imagebin: %v\n%s", err, b)
	}
	return out
}

// runCritest runs the suite against the daemon's socket, writing its output to a file in dir
// (whose name it returns) and its per-spec results to reportPath. It stops critest a minute
// before the test's own deadline so that the results are still read and reported.
func runCritest(t *testing.T, critest, socket, dir, reportPath string) (string, error) {
	t.Helper()
	ctx := context.Background()
	timeout := 30 * time.Minute
	if deadline, ok := t.Deadline(); ok {
		timeout = time.Until(deadline) - 2*time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	endpoint := "unix://" + socket
	args := []string{
		"-runtime-endpoint", endpoint, "-image-endpoint", endpoint,
		// No crictl.yaml: the flags are the whole configuration.
		"-config", filepath.Join(dir, "crictl.yaml"),
		// Serial: critest's -parallel needs the ginkgo CLI, and the suite's host ports and
		// Serial specs gain little from it on two cores.
		"-ginkgo.json-report", reportPath,
		"-ginkgo.no-color",
		// Ginkgo's own timeout, inside ours, so that an overrun still writes the report.
		"-ginkgo.timeout", (timeout - time.Minute).String(),
	}
	args = append(args, strings.Fields(os.Getenv("CRITEST_ARGS"))...)
	logPath := filepath.Join(dir, "critest.log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, critest, args...)
	cmd.Dir = dir
	var w io.Writer = f
	if os.Getenv("CRITEST_VERBOSE") != "" {
		w = io.MultiWriter(f, os.Stdout)
	}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.WaitDelay = 10 * time.Second
	t.Logf("running %s %s", critest, strings.Join(args, " "))
	start := time.Now()
	err = cmd.Run()
	t.Logf("critest ran for %v (exit: %v)", time.Since(start).Round(time.Second), err)
	return logPath, err
}

// report is the part of Ginkgo's JSON report (types.Report) the test reads.
type report struct {
	SuiteDescription string
	SpecReports      []specReport
}

type specReport struct {
	ContainerHierarchyTexts []string
	LeafNodeType            string
	LeafNodeText            string
	State                   string
	RunTime                 time.Duration
	Failure                 *specFailure
}

type specFailure struct {
	Message  string
	Location struct {
		FileName   string
		LineNumber int
	}
}

func (s specReport) name() string {
	return strings.Join(append(slices.Clone(s.ContainerHierarchyTexts), s.LeafNodeText), " ")
}

func readReport(path string) ([]specReport, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var reports []report
	if err := json.Unmarshal(b, &reports); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	var specs []specReport
	for _, r := range reports {
		specs = append(specs, r.SpecReports...)
	}
	return specs, nil
}

// knownFailure is one line of known-failures.txt.
type knownFailure struct {
	spec, reason string
}

// readKnownFailures reads lines of "<spec name, or part of it>  # <reason>"; blank lines and
// lines starting with # are ignored. Every entry needs its reason.
func readKnownFailures(path string) ([]knownFailure, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var known []knownFailure
	s := bufio.NewScanner(f)
	for n := 1; s.Scan(); n++ {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		spec, reason, ok := strings.Cut(line, "#")
		spec, reason = strings.TrimSpace(spec), strings.TrimSpace(reason)
		if !ok || reason == "" || spec == "" {
			return nil, fmt.Errorf("%s:%d: want `<spec> # <reason>`, got %q", path, n, line)
		}
		known = append(known, knownFailure{spec: spec, reason: reason})
	}
	return known, s.Err()
}

func (k knownFailure) matches(name string) bool { return strings.Contains(name, k.spec) }

// summary is critest's outcome, spec by spec.
type summary struct {
	specs                           []specReport
	passed, failed, skipped, others int
	unexpected, knownFailed         []specReport
	knownPassed                     []string
	skipReasons                     map[string][]string
}

// failedStates are Ginkgo's states of a spec that did not pass (types.SpecState).
var failedStates = []string{"failed", "panicked", "timedout", "interrupted", "aborted"}

func summarize(specs []specReport, known []knownFailure) summary {
	s := summary{skipReasons: map[string][]string{}}
	for _, r := range specs {
		// BeforeSuite and the like appear only when they fail.
		if r.LeafNodeType != "It" && !slices.Contains(failedStates, r.State) {
			continue
		}
		s.specs = append(s.specs, r)
		name := r.name()
		i := slices.IndexFunc(known, func(k knownFailure) bool { return k.matches(name) })
		switch {
		case r.State == "passed":
			s.passed++
			if i >= 0 {
				s.knownPassed = append(s.knownPassed, name)
			}
		case r.State == "skipped" || r.State == "pending":
			s.skipped++
			reason := "(no reason: filtered out by -ginkgo.focus/skip; critest always skips its benchmarks)"
			if r.Failure != nil && r.Failure.Message != "" {
				reason = firstLine(r.Failure.Message)
			}
			s.skipReasons[reason] = append(s.skipReasons[reason], name)
		case slices.Contains(failedStates, r.State):
			s.failed++
			if i >= 0 {
				s.knownFailed = append(s.knownFailed, r)
			} else {
				s.unexpected = append(s.unexpected, r)
			}
		default:
			s.others++
		}
	}
	return s
}

func (s summary) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "critest: %d specs reported: %d passed, %d failed (%d of them known limits), %d skipped",
		len(s.specs), s.passed, s.failed, len(s.knownFailed), s.skipped)
	if s.others > 0 {
		fmt.Fprintf(&b, ", %d in other states", s.others)
	}
	b.WriteString("\n")
	write := func(title string, rs []specReport) {
		if len(rs) == 0 {
			return
		}
		sort.Slice(rs, func(i, j int) bool { return rs[i].name() < rs[j].name() })
		fmt.Fprintf(&b, "%s (%d):\n", title, len(rs))
		for _, r := range rs {
			fmt.Fprintf(&b, "  [%s] %s\n", r.State, r.name())
			if r.Failure != nil {
				fmt.Fprintf(&b, "      %s (%s:%d)\n", firstLine(r.Failure.Message),
					filepath.Base(r.Failure.Location.FileName), r.Failure.Location.LineNumber)
			}
		}
	}
	write("failed", s.unexpected)
	write("failed, known limits of the harness", s.knownFailed)
	if len(s.skipReasons) > 0 {
		fmt.Fprintf(&b, "skipped (%d):\n", s.skipped)
		reasons := make([]string, 0, len(s.skipReasons))
		for r := range s.skipReasons {
			reasons = append(reasons, r)
		}
		sort.Strings(reasons)
		for _, r := range reasons {
			fmt.Fprintf(&b, "  %d × %s\n", len(s.skipReasons[r]), r)
		}
	}
	return b.String()
}

// firstLine shortens a Ginkgo failure message to one line: its first line, then the gRPC
// error in it when there is one (gomega prints it after the error's type and address), else
// the following lines.
func firstLine(msg string) string {
	var lines []string
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return ""
	}
	out := lines[0]
	if i := strings.Index(msg, "rpc error: "); i >= 0 {
		rpc, _, _ := strings.Cut(msg[i:], "\n")
		if !strings.Contains(out, rpc) {
			out += ": " + rpc
		}
	} else {
		for i := 1; i < len(lines) && i < 4 && len(out) < 200; i++ {
			out += " " + lines[i]
		}
	}
	if len(out) > 400 {
		out = out[:400] + "…"
	}
	return out
}

// removeLeftovers stops and removes the pods (and so the containers) critest left behind, so
// that what the framework then reports as left on the host is the daemon's doing.
func removeLeftovers(t *testing.T, d *framework.Daemon) {
	if d.Runtime == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pods, err := d.Runtime.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{})
	if err != nil {
		t.Logf("list the pods critest left: %v", err)
		return
	}
	if len(pods) == 0 {
		return
	}
	t.Logf("critest left %d pods; removing them", len(pods))
	for _, p := range pods {
		if err := d.Runtime.StopPodSandbox(ctx, p.Id); err != nil {
			t.Logf("stop pod %s: %v", p.Id, err)
		}
		if err := d.Runtime.RemovePodSandbox(ctx, p.Id); err != nil {
			t.Logf("remove pod %s: %v", p.Id, err)
		}
	}
}

// shmSegments returns the host's System V shared memory segments: ID → number of attaches.
func shmSegments(t *testing.T) map[int]int {
	b, err := os.ReadFile("/proc/sysvipc/shm")
	if err != nil {
		t.Logf("read shared memory segments: %v", err)
		return nil
	}
	segs := map[int]int{}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	header := strings.Fields(lines[0])
	idCol, attCol := slices.Index(header, "shmid"), slices.Index(header, "nattch")
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if idCol < 0 || attCol < 0 || len(f) <= max(idCol, attCol) {
			continue
		}
		id, err1 := strconv.Atoi(f[idCol])
		n, err2 := strconv.Atoi(f[attCol])
		if err1 == nil && err2 == nil {
			segs[id] = n
		}
	}
	return segs
}

// removeNewShm removes the unattached shared memory segments created on the host since
// before: critest's HostIpc specs make one each with ipcmk and never remove it.
func removeNewShm(t *testing.T, before map[int]int) {
	if before == nil {
		return
	}
	removed := 0
	for id, n := range shmSegments(t) {
		if _, ok := before[id]; ok || n != 0 {
			continue
		}
		if _, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil); err != nil {
			t.Logf("remove shared memory segment %d: %v", id, err)
			continue
		}
		removed++
	}
	if removed > 0 {
		t.Logf("removed %d shared memory segments critest created on the host (ipcmk) and left", removed)
	}
}

// critestTally returns Ginkgo's closing "N Passed | N Failed | ..." line from critest's output.
func critestTally(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(string(b), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], " Passed | ") {
			return strings.TrimSpace(lines[i])
		}
	}
	return ""
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func logHint() string {
	if os.Getenv("CRITEST_ARTIFACTS") != "" {
		return "saved to $CRITEST_ARTIFACTS"
	}
	if os.Getenv("CRITEST_VERBOSE") != "" {
		return "above"
	}
	return "set CRITEST_VERBOSE=1 to stream it, or CRITEST_ARTIFACTS=<dir> to keep it"
}

// saveArtifacts copies critest's output and JSON report to dir.
func saveArtifacts(t *testing.T, dir, logPath, reportPath string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("save artifacts: %v", err)
		return
	}
	for _, p := range []string{logPath, reportPath} {
		b, err := os.ReadFile(p)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, filepath.Base(p)), b, 0o644)
		}
		if err != nil {
			t.Logf("save artifacts: %v", err)
		}
	}
}
