package e2e

import (
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// A panic in one of the daemon's own goroutines (here the exit watcher of
// a container, made to panic by the test-only CRI_RUNTIME_PANIC_AT crash
// point) is recovered and logged with its stack: the daemon goes on
// serving, and the exit the watcher would have recorded is still shown
// (from conmon's exit file) and recorded by the next look at it.
func TestPanicInDaemonGoroutineIsRecovered(t *testing.T) {
	t.Parallel()
	needCrashPoints(t)
	d := framework.NewDaemon(t, framework.Options{Binary: binaryFor(t), Args: []string{"--registries-conf", registriesConf}})
	d.Env = []string{"CRI_RUNTIME_PANIC_AT=ctr-watch:exited"}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	cleanupPods(t, d)
	pull(t, d, framework.BusyboxImage, factsOf(t, framework.BusyboxImage))
	pod, podCfg := ctrPod(t, d, "panic")
	id := runCtr(t, d, pod, podCfg, shCfg("exits", "sleep 0.5; exit 7"))

	logged := func() bool {
		logs := d.Logs()
		return strings.Contains(logs, "recovered from a panic") && strings.Contains(logs, `goroutine="watch container exit"`) &&
			strings.Contains(logs, "crash point ctr-watch:exited")
	}
	if !eventually(30*time.Second, logged) {
		t.Fatalf("no recovered panic of the exit watcher in the daemon's log:\n%s", d.Logs())
	}
	if _, err := d.Runtime.Version(ctxT(t), ""); err != nil {
		t.Fatalf("the daemon no longer answers after a panic in its goroutine: %v\n%s", err, d.ExitErr())
	}
	st := d.CtrStatus(t, id)
	if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 7 {
		t.Errorf("ContainerStatus after its watcher panicked: %v, exit code %d; want EXITED, 7", st.State, st.ExitCode)
	}
	// It still does its work: another container runs and is removed.
	id2 := runCtr(t, d, pod, podCfg, shCfg("after", "exec sleep 600"))
	if err := d.Runtime.RemoveContainer(ctxT(t), id2); err != nil {
		t.Errorf("RemoveContainer after the panic: %v", err)
	}
}
