package e2e

// Pod and container RPCs racing each other: whatever the interleaving, the
// outcome must be one the two calls could have had one after the other.

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// raceRound is what one round of a race works on: a pod and, unless the
// race creates it, a container in it (created, or running when the race
// needs it). marker is in the container's command line.
type raceRound struct {
	pod, ctr string
	podCfg   *runtimeapi.PodSandboxConfig
	cfg      *runtimeapi.ContainerConfig
	marker   string
}

// refused is an answer a call that lost the race may give: the object is
// gone (NotFound) or no longer in a state for it (FailedPrecondition).
func refused(err error) bool {
	c := status.Code(err)
	return c == codes.NotFound || c == codes.FailedPrecondition
}

func TestRPCRacePairs(t *testing.T) {
	t.Parallel()
	raceBuild(t)
	d, _ := startCtrDaemon(t)
	rounds := faultRounds(t, 3)

	type pair struct {
		name string
		// ctr: the round begins with a container (created; running too
		// when running is set).
		ctr, running bool
		a, b         func(r *raceRound) error
		// check looks at the outcome, given both errors.
		check func(t *testing.T, r *raceRound, errA, errB error)
	}
	removePod := func(r *raceRound) error { return d.Runtime.RemovePodSandbox(ctxT(t), r.pod) }
	removeCtr := func(r *raceRound) error { return d.Runtime.RemoveContainer(ctxT(t), r.ctr) }
	create := func(r *raceRound) error {
		id, err := d.Runtime.CreateContainer(ctxT(t), r.pod, r.cfg, r.podCfg)
		if err == nil {
			r.ctr = id
		}
		return err
	}
	start := func(r *raceRound) error { return d.Runtime.StartContainer(ctxT(t), r.ctr) }
	execSync := func(r *raceRound) error {
		_, _, err := d.Runtime.ExecSync(ctxT(t), r.ctr, []string{"sh", "-c", "echo hi; sleep 0.1"}, 10*time.Second)
		return err
	}
	stop := func(r *raceRound) error { return d.Runtime.StopContainer(ctxT(t), r.ctr, 0) }

	// removed: the removal succeeded, the other call succeeded or was
	// refused, and the pod or container is gone with everything it ran.
	removed := func(podGone bool) func(t *testing.T, r *raceRound, errA, errB error) {
		return func(t *testing.T, r *raceRound, errA, errB error) {
			if errA != nil {
				t.Errorf("the removal: %v; want success", errA)
			}
			if errB != nil && !refused(errB) {
				t.Errorf("the call racing the removal: %v; want success, NotFound or FailedPrecondition", errB)
			}
			if r.ctr != "" {
				if _, err := d.Runtime.ContainerStatus(ctxT(t), r.ctr, false); !isNotFound(err) {
					t.Errorf("container after the removal: %v; want NotFound", err)
				}
			}
			if podGone {
				if _, err := d.Runtime.PodSandboxStatus(ctxT(t), r.pod, false); !isNotFound(err) {
					t.Errorf("pod after its removal: %v; want NotFound", err)
				}
				if ctrs := d.ListCtrIDs(t, &runtimeapi.ContainerFilter{PodSandboxId: r.pod}); len(ctrs) != 0 {
					t.Errorf("containers listed in the removed pod: %v", ctrs)
				}
			}
		}
	}
	pairs := []pair{
		{name: "RemovePodSandbox vs CreateContainer", a: removePod, b: create, check: removed(true)},
		{name: "RemovePodSandbox vs StartContainer", ctr: true, a: removePod, b: start, check: removed(true)},
		{name: "RemovePodSandbox vs ExecSync", ctr: true, running: true, a: removePod, b: execSync, check: removed(true)},
		{name: "RemovePodSandbox vs StopContainer", ctr: true, running: true, a: removePod, b: stop, check: removed(true)},
		{name: "RemoveContainer vs StartContainer", ctr: true, a: removeCtr, b: start, check: removed(false)},
		{name: "RemoveContainer vs ExecSync", ctr: true, running: true, a: removeCtr, b: execSync, check: removed(false)},
		{
			name: "StopPodSandbox vs CreateContainer", a: func(r *raceRound) error { return d.Runtime.StopPodSandbox(ctxT(t), r.pod) }, b: create,
			check: func(t *testing.T, r *raceRound, errStop, errCreate error) {
				if errStop != nil {
					t.Errorf("StopPodSandbox: %v; want success", errStop)
				}
				if st := podStatus(t, d, r.pod, false); st.Status.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
					t.Errorf("pod %v after StopPodSandbox; want not ready", st.Status.State)
				}
				switch {
				case errCreate == nil:
					// Created first: the stopped pod's container cannot run.
					if err := d.Runtime.StartContainer(ctxT(t), r.ctr); !refused(err) {
						t.Errorf("StartContainer in a stopped pod: %v; want FailedPrecondition", err)
					}
					if s := d.CtrStatus(t, r.ctr).State; s == runtimeapi.ContainerState_CONTAINER_RUNNING {
						t.Errorf("a container of a stopped pod is %v", s)
					}
				case !refused(errCreate):
					t.Errorf("CreateContainer racing StopPodSandbox: %v; want success, NotFound or FailedPrecondition", errCreate)
				}
				if err := d.Runtime.RemovePodSandbox(ctxT(t), r.pod); err != nil {
					t.Errorf("RemovePodSandbox after the race: %v", err)
				}
			},
		},
	}

	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			for i := range rounds {
				r := &raceRound{marker: fmt.Sprintf("race-%s", randomHex(6))}
				r.podCfg = podConfig(fmt.Sprintf("race%d", i))
				r.podCfg.LogDirectory = t.TempDir()
				r.pod = runPod(t, d, r.podCfg)
				r.cfg = shCfg("c", "sleep 3600; : "+r.marker)
				if p.ctr {
					r.ctr = createCtr(t, d, r.pod, r.podCfg, r.cfg)
					if p.running {
						startCtr(t, d, r.ctr)
					}
				}
				var (
					wg         sync.WaitGroup
					errA, errB error
				)
				begin := make(chan struct{})
				wg.Add(2)
				go func() {
					defer wg.Done()
					<-begin
					// Spread the first call over the other's steps.
					time.Sleep(time.Duration(i%5) * 5 * time.Millisecond)
					errA = p.a(r)
				}()
				go func() {
					defer wg.Done()
					<-begin
					errB = p.b(r)
				}()
				close(begin)
				wg.Wait()
				p.check(t, r, errA, errB)

				// Nothing the round ran outlives it.
				if !eventually(10*time.Second, func() bool {
					return len(framework.ProcsMentioning(t, r.marker, 0)) == 0
				}) {
					t.Errorf("round %d: processes left: %q", i, framework.ProcsMentioning(t, r.marker, 0))
				}
				if t.Failed() {
					t.Fatalf("round %d of %d failed (errors %v, %v)", i, rounds, errA, errB)
				}
			}
		})
	}
	// The listing holds together: every container listed is in a pod listed.
	pods := map[string]bool{}
	for _, id := range listIDs(t, d, nil) {
		pods[id] = true
	}
	for _, c := range func() []*runtimeapi.Container {
		cs, err := d.Runtime.ListContainers(ctxT(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}() {
		if !pods[c.PodSandboxId] {
			t.Errorf("container %s is listed in pod %s, which is not", c.Id, c.PodSandboxId)
		}
	}
}
