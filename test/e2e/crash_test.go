package e2e

// Crash consistency: the daemon is killed (SIGKILL, from inside, through
// pkg/crashpoint) at chosen points inside RunPodSandbox, CreateContainer,
// StartContainer, StopPodSandbox, RemoveContainer and RemovePodSandbox.
// After a restart each object is either finished or gone, the operation
// can be done (again), and once everything is removed nothing is left on
// the host: no mounts, leases, storage containers, monitors, cgroups or NAT
// rules.

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// crashState is what a case works on.
type crashState struct {
	podCfg *runtimeapi.PodSandboxConfig
	ctrCfg *runtimeapi.ContainerConfig
	pod    string // "" until run
	ctr    string // "" until created
}

func TestCrashConsistency(t *testing.T) {
	t.Parallel()
	needCrashPoints(t)
	d := framework.NewDaemon(t, framework.Options{Binary: binaryFor(t), Args: []string{"--registries-conf", registriesConf}})
	if err := d.Start(); err != nil {
		t.Fatalf("start: %v\n%s", err, d.Logs())
	}
	cleanupPods(t, d)
	pull(t, d, framework.BusyboxImage, factsOf(t, framework.BusyboxImage))
	top := "crirt-crash-" + randomHex(4) // the pods' cgroup parents go under it
	t.Cleanup(func() { rmdirCgroups(t, top) })

	podState := func(t *testing.T, id string) runtimeapi.PodSandboxState {
		t.Helper()
		return podStatus(t, d, id, false).GetStatus().GetState()
	}
	ctrState := func(t *testing.T, id string) runtimeapi.ContainerState {
		t.Helper()
		return d.CtrStatus(t, id).GetState()
	}
	listed := func(t *testing.T) (pods, ctrs int) {
		t.Helper()
		ps, err := d.Runtime.ListPodSandbox(ctxT(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := d.Runtime.ListContainers(ctxT(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		return len(ps), len(cs)
	}
	runPodFor := func(t *testing.T, s *crashState) {
		t.Helper()
		id, err := d.Runtime.RunPodSandbox(ctxT(t), s.podCfg, "")
		if err != nil {
			t.Fatalf("RunPodSandbox: %v", err)
		}
		s.pod = id
	}
	createFor := func(t *testing.T, s *crashState) {
		t.Helper()
		id, err := d.Runtime.CreateContainer(ctxT(t), s.pod, s.ctrCfg, s.podCfg)
		if err != nil {
			t.Fatalf("CreateContainer: %v", err)
		}
		s.ctr = id
	}
	startFor := func(t *testing.T, s *crashState) {
		t.Helper()
		if err := d.Runtime.StartContainer(ctxT(t), s.ctr); err != nil {
			t.Fatalf("StartContainer: %v", err)
		}
	}

	for _, tc := range []struct {
		point   string
		prepare func(*testing.T, *crashState) // with a daemon that does not crash
		op      func(*crashState) error       // what the crash interrupts
		after   func(*testing.T, *crashState) // on the restarted daemon
	}{
		{point: "pod-run:record", op: func(s *crashState) error { _, err := d.Runtime.RunPodSandbox(ctxT(t), s.podCfg, ""); return err }},
		{point: "pod-run:namespaces", op: func(s *crashState) error { _, err := d.Runtime.RunPodSandbox(ctxT(t), s.podCfg, ""); return err }},
		{point: "pod-run:cgroup", op: func(s *crashState) error { _, err := d.Runtime.RunPodSandbox(ctxT(t), s.podCfg, ""); return err }},
		{point: "pod-run:files", op: func(s *crashState) error { _, err := d.Runtime.RunPodSandbox(ctxT(t), s.podCfg, ""); return err }},
		{point: "pod-run:network", op: func(s *crashState) error { _, err := d.Runtime.RunPodSandbox(ctxT(t), s.podCfg, ""); return err }},
		{point: "ctr-create:record", prepare: runPodFor, op: func(s *crashState) error {
			_, err := d.Runtime.CreateContainer(ctxT(t), s.pod, s.ctrCfg, s.podCfg)
			return err
		}},
		{point: "ctr-create:layer", prepare: runPodFor, op: func(s *crashState) error {
			_, err := d.Runtime.CreateContainer(ctxT(t), s.pod, s.ctrCfg, s.podCfg)
			return err
		}},
		{point: "ctr-create:runc", prepare: runPodFor, op: func(s *crashState) error {
			_, err := d.Runtime.CreateContainer(ctxT(t), s.pod, s.ctrCfg, s.podCfg)
			return err
		}},
		{
			point:   "ctr-start:before",
			prepare: func(t *testing.T, s *crashState) { runPodFor(t, s); createFor(t, s) },
			op:      func(s *crashState) error { return d.Runtime.StartContainer(ctxT(t), s.ctr) },
			after: func(t *testing.T, s *crashState) {
				if st := ctrState(t, s.ctr); st != runtimeapi.ContainerState_CONTAINER_CREATED {
					t.Errorf("container %v after a crash before runc start; want CREATED", st)
				}
				startFor(t, s)
			},
		},
		{
			point:   "ctr-start:started",
			prepare: func(t *testing.T, s *crashState) { runPodFor(t, s); createFor(t, s) },
			op:      func(s *crashState) error { return d.Runtime.StartContainer(ctxT(t), s.ctr) },
			after: func(t *testing.T, s *crashState) {
				st := d.CtrStatus(t, s.ctr)
				if st.State != runtimeapi.ContainerState_CONTAINER_RUNNING || st.StartedAt == 0 {
					t.Errorf("container %v (started at %d) after a crash right after runc start; want RUNNING with a start time", st.State, st.StartedAt)
				}
				mustExec(t, d.RawRuntime(t), s.ctr, "true")
			},
		},
		{
			point:   "pod-stop:containers",
			prepare: func(t *testing.T, s *crashState) { runPodFor(t, s); createFor(t, s); startFor(t, s) },
			op:      func(s *crashState) error { return d.Runtime.StopPodSandbox(ctxT(t), s.pod) },
			after: func(t *testing.T, s *crashState) {
				if st := ctrState(t, s.ctr); st != runtimeapi.ContainerState_CONTAINER_EXITED {
					t.Errorf("container %v after a crash in StopPodSandbox once it was stopped; want EXITED", st)
				}
				if err := d.Runtime.StopPodSandbox(ctxT(t), s.pod); err != nil {
					t.Errorf("StopPodSandbox again: %v", err)
				}
				if l := leases(t, d.Root); len(l) != 0 {
					t.Errorf("leases after the stop: %v", l)
				}
			},
		},
		{
			point:   "pod-stop:not-ready",
			prepare: func(t *testing.T, s *crashState) { runPodFor(t, s); createFor(t, s); startFor(t, s) },
			op:      func(s *crashState) error { return d.Runtime.StopPodSandbox(ctxT(t), s.pod) },
			after: func(t *testing.T, s *crashState) {
				if st := podState(t, s.pod); st != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
					t.Errorf("pod %v after a crash before CNI DEL; want NOTREADY", st)
				}
				// The start-up ran the DEL the stop owed.
				if l := leases(t, d.Root); len(l) != 0 {
					t.Errorf("leases of a stopped pod after the restart: %v", l)
				}
			},
		},
		{point: "ctr-remove:marked", prepare: func(t *testing.T, s *crashState) { runPodFor(t, s); createFor(t, s); startFor(t, s) }, op: func(s *crashState) error { return d.Runtime.RemoveContainer(ctxT(t), s.ctr) }},
		// After "runc delete", in the removal's background half: the
		// RemoveContainer has returned, and the pod's removal, which waits
		// for that half, meets the crash.
		{point: "ctr-remove:deleted", prepare: func(t *testing.T, s *crashState) { runPodFor(t, s); createFor(t, s); startFor(t, s) }, op: func(s *crashState) error {
			if err := d.Runtime.RemoveContainer(ctxT(t), s.ctr); err != nil {
				return err
			}
			return d.Runtime.RemovePodSandbox(ctxT(t), s.pod)
		}},
		{point: "pod-remove:marked", prepare: func(t *testing.T, s *crashState) { runPodFor(t, s); createFor(t, s); startFor(t, s) }, op: func(s *crashState) error { return d.Runtime.RemovePodSandbox(ctxT(t), s.pod) }},
		{point: "pod-remove:unpinned", prepare: func(t *testing.T, s *crashState) { runPodFor(t, s); createFor(t, s); startFor(t, s) }, op: func(s *crashState) error { return d.Runtime.RemovePodSandbox(ctxT(t), s.pod) }},
	} {
		t.Run(strings.ReplaceAll(tc.point, ":", "-"), func(t *testing.T) {
			s := &crashState{podCfg: podConfig("crash"), ctrCfg: shCfg("main", "exec sleep 1000")}
			s.podCfg.LogDirectory = t.TempDir()
			s.podCfg.Linux.CgroupParent = "/" + filepath.Join(top, "pod"+s.podCfg.Metadata.Uid)
			storageBefore := storageIDs(t, d)
			if tc.prepare != nil {
				tc.prepare(t, s)
			}

			// Restart armed, do the operation, and see the daemon die.
			if err := d.Stop(syscall.SIGTERM, 30*time.Second); err != nil {
				t.Fatal(err)
			}
			d.Env = []string{"CRI_RUNTIME_CRASH_AT=" + tc.point}
			if err := d.Start(); err != nil {
				t.Fatalf("start armed: %v\n%s", err, d.Logs())
			}
			if err := tc.op(s); err == nil {
				t.Fatalf("the operation succeeded; the crash point %s was never reached", tc.point)
			}
			if err := d.Wait(20 * time.Second); err == nil || !strings.Contains(err.Error(), "killed") {
				t.Fatalf("daemon exit after the crash point: %v; want killed", err)
			}
			d.Env = nil
			if err := d.Start(); err != nil {
				t.Fatalf("restart after the crash: %v\n%s", err, d.Logs())
			}

			pods, ctrs := listed(t)
			switch {
			case tc.after != nil:
				tc.after(t, s)
			case strings.HasPrefix(tc.point, "pod-run:"):
				// Never finished: nothing of it is left, and the name is free.
				if pods != 0 {
					t.Errorf("%d pods listed after a crash inside RunPodSandbox; want none", pods)
				}
				runPodFor(t, s)
			case strings.HasPrefix(tc.point, "ctr-create:"):
				if ctrs != 0 {
					t.Errorf("%d containers listed after a crash inside CreateContainer; want none", ctrs)
				}
				if got := storageIDs(t, d); !slices.Equal(got, storageBefore) {
					t.Errorf("storage containers after the interrupted create: %v; want %v", got, storageBefore)
				}
				createFor(t, s)
				startFor(t, s)
			case strings.HasPrefix(tc.point, "ctr-remove:"):
				if ctrs != 0 {
					t.Errorf("%d containers listed after a crash inside RemoveContainer; want the removal finished", ctrs)
				}
				if got := storageIDs(t, d); !slices.Equal(got, storageBefore) {
					t.Errorf("storage containers after the interrupted remove: %v; want %v", got, storageBefore)
				}
			case strings.HasPrefix(tc.point, "pod-remove:"):
				if pods != 0 || ctrs != 0 {
					t.Errorf("%d pods and %d containers listed after a crash inside RemovePodSandbox; want the removal finished", pods, ctrs)
				}
			}
			if t.Failed() {
				t.Logf("daemon log after the restart:\n%s", d.Logs())
			}

			// Whatever state it was left in, removing it leaves nothing.
			if s.pod != "" {
				if err := d.Runtime.RemovePodSandbox(ctxT(t), s.pod); err != nil {
					t.Fatalf("RemovePodSandbox: %v", err)
				}
			}
			if pods, ctrs := listed(t); pods != 0 || ctrs != 0 {
				t.Errorf("%d pods and %d containers left after removing the pod", pods, ctrs)
			}
			if got := storageIDs(t, d); !slices.Equal(got, storageBefore) {
				t.Errorf("storage containers left: %v; want %v", got, storageBefore)
			}
			if l := leases(t, d.Root); len(l) != 0 {
				t.Errorf("leases left: %v", l)
			}
			if cg := cgroupsNamed(t, top+"/pod"+s.podCfg.Metadata.Uid); len(cg) != 0 {
				t.Errorf("pod cgroups left: %v", cg)
			}
			if s.pod != "" {
				if n := natChains(t, s.pod); len(n) != 0 {
					t.Errorf("NAT chains left: %v", n)
				}
			}
			if entries := dirEntries(t, filepath.Join(d.State, "sandboxes")); len(entries) != 0 {
				t.Errorf("pod state directories left: %v", entries)
			}
			checkNothingLeft(t, d)
		})
	}
}

func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestCreateContainerRetry: a CreateContainer that outlives its client's
// deadline goes on, and the kubelet's retry (same pod, name and attempt)
// receives the container it made, instead of a "name is reserved" loop.
func TestCreateContainerRetry(t *testing.T) {
	t.Parallel()
	raceBuild(t)
	needCrashPoints(t)
	d := framework.NewDaemon(t, framework.Options{Binary: binaryFor(t), Args: []string{"--registries-conf", registriesConf}})
	d.Env = []string{"CRI_RUNTIME_STALL_AT=ctr-create:layer=2s"}
	if err := d.Start(); err != nil {
		t.Fatalf("start: %v\n%s", err, d.Logs())
	}
	cleanupPods(t, d)
	pull(t, d, framework.BusyboxImage, factsOf(t, framework.BusyboxImage))
	pod, podCfg := ctrPod(t, d, "ctr-retry")
	cfg := shCfg("main", "exec sleep 1000")
	storageBefore := storageIDs(t, d)

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if id, err := d.Runtime.CreateContainer(ctx, pod, cfg, podCfg); err == nil {
		t.Fatalf("CreateContainer through a 2s stall with a 0.5s deadline succeeded (%s); the test cannot give up on it", id)
	}
	id, err := d.Runtime.CreateContainer(ctxT(t), pod, cfg, podCfg) // waits for the first
	if err != nil {
		t.Fatalf("the retry: %v", err)
	}
	if got := d.ListCtrIDs(t, nil); !slices.Equal(got, []string{id}) {
		t.Errorf("containers after a given-up create and its retry = %v; want just %s", got, id)
	}
	if got := storageIDs(t, d); len(got) != len(storageBefore)+1 {
		t.Errorf("storage containers %v; want one more than %v", got, storageBefore)
	}
	startCtr(t, d, id)
	// The retry got it: a third create is a genuine duplicate.
	if _, err := d.RawRuntime(t).CreateContainer(ctxT(t), &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: cfg, SandboxConfig: podCfg}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("a third CreateContainer, after the container was returned = %v; want AlreadyExists", err)
	}

	// A retry arriving after the work finished also receives it.
	cfg2 := shCfg("second", "exec sleep 1000")
	ctx2, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	if _, err := d.Runtime.CreateContainer(ctx2, pod, cfg2, podCfg); err == nil {
		t.Fatal("CreateContainer with a 0.5s deadline through a 2s stall succeeded")
	}
	time.Sleep(3 * time.Second) // the work finishes with nobody waiting
	id2, err := d.Runtime.CreateContainer(ctxT(t), pod, cfg2, podCfg)
	if err != nil || id2 == id {
		t.Fatalf("a late retry = %s, %v; want the second container", id2, err)
	}
	if got := d.ListCtrIDs(t, nil); len(got) != 2 {
		t.Errorf("containers %v; want two", got)
	}
}
