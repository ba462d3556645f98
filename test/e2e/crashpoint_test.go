package e2e

// The crash points (pkg/crashpoint) are compiled only into the test builds
// of the daemon (the crashpoints build tag): the daemon `make build` ships
// must not react to their variables.

import (
	"strings"
	"testing"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// needCrashPoints fails the test unless the daemon it runs was built with the
// crash points, which it arms: a plain build would ignore them and the test
// would check nothing.
func needCrashPoints(t *testing.T) {
	t.Helper()
	bin := binaryFor(t)
	has, err := framework.HasCrashPoints(bin)
	if err != nil || !has {
		t.Fatalf("%s is not built with the %s tag (make build-test, $CRI_RUNTIME_TEST_BINARY): %v", bin, framework.CrashPointsTag, err)
	}
}

// The production build, with every kind of point armed where a pod and a
// container pass, runs, stops and removes them in the same process.
func TestProductionBuildHasNoCrashPoints(t *testing.T) {
	t.Parallel()
	if has, err := framework.HasCrashPoints(benchBinary); err != nil || has {
		t.Fatalf("the production build %s: crash points compiled in = %v (%v); want false", benchBinary, has, err)
	}
	d := framework.NewDaemon(t, framework.Options{Binary: benchBinary, Args: []string{"--registries-conf", registriesConf}})
	d.Env = []string{
		"CRI_RUNTIME_CRASH_AT=pod-run:network",
		"CRI_RUNTIME_PANIC_AT=ctr-create:record",
		"CRI_RUNTIME_STALL_AT=ctr-start:before=1h", // ctxT's minute would run out
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	cleanupPods(t, d)
	pull(t, d, framework.BusyboxImage, factsOf(t, framework.BusyboxImage))
	pod, podCfg := ctrPod(t, d, "no-crash-points")
	id := runCtr(t, d, pod, podCfg, shCfg("main", "exec sleep 1000"))
	if err := d.Runtime.StopPodSandbox(ctxT(t), pod); err != nil {
		t.Fatalf("StopPodSandbox: %v", err)
	}
	if err := d.Runtime.RemovePodSandbox(ctxT(t), pod); err != nil {
		t.Fatalf("RemovePodSandbox: %v", err)
	}
	if _, err := d.Runtime.Version(ctxT(t), ""); err != nil {
		t.Errorf("the daemon no longer answers: %v (exit: %v)", err, d.ExitErr())
	}
	if logs := d.Logs(); strings.Contains(logs, "crash point") {
		t.Errorf("the production build reached an armed point (container %s):\n%s", id, logs)
	}
}
