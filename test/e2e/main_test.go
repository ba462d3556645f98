// Package e2e drives the real cri-runtime binary, with the real OCI runtime,
// monitor and CNI plugins, through the kubelet's own CRI client. Images come
// from a registry the tests start in-process, filled with images they build
// from Debian's static busybox; nothing is pulled from the internet.
package e2e

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

var (
	// The daemon builds, each made once for the whole package:
	//   - binary, the test build (with the crash points: make build-test,
	//     $CRI_RUNTIME_TEST_BINARY), which most tests run;
	//   - raceBinary, the test build with the race detector (make
	//     build-race, $CRI_RUNTIME_RACE_BINARY), for the tests that call
	//     raceBuild: it is several times slower, so only the tests whose
	//     subject is concurrency inside the daemon run it;
	//   - benchBinary, the production build (make build,
	//     $CRI_RUNTIME_BINARY), which benchmarks time and
	//     TestProductionBuildHasNoCrashPoints checks.
	binary, raceBinary, benchBinary string
	// registry serves the test images; registriesConf points the daemon at it.
	registry       *framework.Registry
	registriesConf string
	testImages     map[string]*framework.TestImage
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: skipped: these tests run the daemon for real and need root (sudo make test)")
		if os.Getenv("CI") != "" {
			return 1
		}
		return 0
	}
	// The CRI client logs every failed call through klog; the tests check
	// those errors themselves.
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	_ = klogFlags.Set("logtostderr", "false")
	_ = klogFlags.Set("stderrthreshold", "FATAL")
	klog.SetOutput(io.Discard)

	dir, err := os.MkdirTemp("", "crirt-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if benchBinary, err = framework.BuildBinary(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if binary, err = framework.BuildTestBinary(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	// A race the race-detector build reports fails the test whose daemon
	// reported it (framework.NewDaemon). Without one (make test-e2e builds
	// it), the tests that ask for it run the test build.
	raceBinary = binary
	if p := os.Getenv("CRI_RUNTIME_RACE_BINARY"); p != "" {
		if raceBinary, err = filepath.Abs(p); err == nil {
			_, err = os.Stat(raceBinary)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e: CRI_RUNTIME_RACE_BINARY:", err)
			return 1
		}
	}
	if registry, err = framework.StartRegistry(framework.RegistryOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: start registry:", err)
		return 1
	}
	defer registry.Close()
	if testImages, err = registry.PushTestImages(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: push test images:", err)
		return 1
	}
	registriesConf = filepath.Join(dir, "registries.conf")
	if err := registry.WriteRegistriesConf(registriesConf); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	before := hostSnapshot()
	code := m.Run()
	if others := foreignDaemons(); len(others) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: host-wide leak check skipped: another test run's daemons are active (%s)\n", strings.Join(others, ", "))
	} else if left := newSince(before, hostSnapshot()); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: the tests left on the host:\n  %s\n", strings.Join(left, "\n  "))
		if code == 0 {
			code = 1
		}
	}
	return code
}

// startDaemon starts a daemon on fresh directories, pointed at the test
// registry, with extra flags.
func startDaemon(t *testing.T, args ...string) *framework.Daemon {
	t.Helper()
	return framework.StartDaemon(t, framework.Options{Binary: binaryFor(t), Args: append([]string{"--registries-conf", registriesConf}, args...)})
}

// raceTests are the top-level tests that called raceBuild.
var raceTests sync.Map

// raceBuild makes every daemon the test (and its subtests) starts from now
// on the race-detector build. The tests that call it are those whose subject
// is concurrency inside the daemon: the churn, the streaming server (exec,
// attach, port-forward and their failing clients), RPCs raced against each
// other, concurrent and stalled pulls, and calls given up on and retried
// while the daemon is still at work on them.
func raceBuild(t *testing.T) {
	t.Helper()
	top, _, _ := strings.Cut(t.Name(), "/")
	raceTests.Store(top, true)
	if raceBinary == binary {
		t.Logf("CRI_RUNTIME_RACE_BINARY is not set: running %s, which has no race detector", binary)
	}
}

// binaryFor is the daemon binary for t: the race-detector build when the
// test called raceBuild, else the test build.
func binaryFor(t testing.TB) string {
	top, _, _ := strings.Cut(t.Name(), "/")
	if _, ok := raceTests.Load(top); ok {
		return raceBinary
	}
	return binary
}
