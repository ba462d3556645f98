package critest

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
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
