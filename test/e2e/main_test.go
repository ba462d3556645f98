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
	"testing"

	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

var (
	// binary is the daemon under test, built once for the whole package:
	// the race-detector build when CRI_RUNTIME_RACE_BINARY names one.
	// benchBinary is the normal build, which benchmarks time.
	binary, benchBinary string
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
	if binary, err = framework.BuildBinary(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	// Benchmarks time the normal build; tests run the race-detector build
	// when there is one (make test-e2e builds it), and a race it reports
	// fails the test whose daemon reported it (framework.NewDaemon).
	benchBinary = binary
	if p := os.Getenv("CRI_RUNTIME_RACE_BINARY"); p != "" {
		if binary, err = filepath.Abs(p); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
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
	return framework.StartDaemon(t, framework.Options{Binary: binary, Args: append([]string{"--registries-conf", registriesConf}, args...)})
}
