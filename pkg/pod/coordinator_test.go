package pod

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/sandbox"
)

const podID = "pod00000000000000000"

// world holds both fakes' state under one lock, and a journal of what the
// Coordinator asked of them, in order ("stop containers", "stop pod",
// "remove containers", "remove pod").
type world struct {
	mu      sync.Mutex
	pods    map[string]sandbox.State
	ctrs    map[string]string // container ID → pod ID
	journal []string
	// stopCtrErr fails StopPodContainers; onStopCtrs runs inside it.
	stopCtrErr error
	onStopCtrs func()
	// removeCtrErr fails RemovePodContainers.
	removeCtrErr error
	// leftOver records a pod removed while containers were still there.
	leftOver []string
	// recoverErr fails the Recover of "pods" or "containers".
	recoverErr map[string]error
}

func newWorld() *world {
	return &world{pods: map[string]sandbox.State{podID: sandbox.Ready}, ctrs: map[string]string{}}
}

func (w *world) note(s string) {
	w.mu.Lock()
	w.journal = append(w.journal, s)
	w.mu.Unlock()
	runtime.Gosched() // let a racing call in, were it not kept out
}

func (w *world) steps() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.journal)
}

// fakePods is the pod service: Get resolves prefixes, as the real one.
type fakePods struct{ w *world }

func (f fakePods) Get(id string) (*sandbox.Sandbox, error) {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	for full, st := range f.w.pods {
		if id != "" && strings.HasPrefix(full, id) {
			return &sandbox.Sandbox{ID: full, State: st}, nil
		}
	}
	return nil, fmt.Errorf("pod sandbox %s: %w", id, errdefs.ErrNotFound)
}

func (f fakePods) Stop(_ context.Context, id string) error {
	f.w.note("stop pod")
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	if _, ok := f.w.pods[id]; ok {
		f.w.pods[id] = sandbox.NotReady
	}
	return nil
}

func (f fakePods) Remove(_ context.Context, id string) error {
	f.w.note("remove pod")
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	for c, p := range f.w.ctrs {
		if p == id {
			f.w.leftOver = append(f.w.leftOver, c)
		}
	}
	delete(f.w.pods, id)
	return nil
}

func (f fakePods) Recover(context.Context) error {
	f.w.note("recover pods")
	return f.w.recoverErr["pods"]
}

// fakeContainers is the container service.
type fakeContainers struct{ w *world }

func (f fakeContainers) Recover(context.Context) error {
	f.w.note("recover containers")
	return f.w.recoverErr["containers"]
}

func (f fakeContainers) StopPodContainers(_ context.Context, podID string) error {
	f.w.note("stop containers")
	f.w.mu.Lock()
	err, hook := f.w.stopCtrErr, f.w.onStopCtrs
	f.w.mu.Unlock()
	if hook != nil {
		hook()
	}
	return err
}

func (f fakeContainers) RemovePodContainers(_ context.Context, podID string) error {
	f.w.note("remove containers")
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	if f.w.removeCtrErr != nil {
		return f.w.removeCtrErr
	}
	for c, p := range f.w.ctrs {
		if p == podID {
			delete(f.w.ctrs, c)
		}
	}
	return nil
}

// create is what container.Service does to make a container: admitted
// through the gate, it registers the container, then releases.
func (f fakeContainers) create(g *Gate, pod, id string) error {
	release, err := g.Admit(pod)
	if err != nil {
		return err
	}
	defer release()
	sb, err := g.Get(pod)
	if err != nil {
		return err
	}
	runtime.Gosched() // let a racing removal in, were it not kept out
	f.w.mu.Lock()
	f.w.ctrs[id] = sb.ID
	f.w.mu.Unlock()
	return nil
}

var (
	_ Pods       = fakePods{}
	_ Containers = fakeContainers{}
)

func newCoordinator(w *world) (*Coordinator, *Gate) {
	pods := fakePods{w}
	g := NewGate(pods)
	return New(Options{Pods: pods, Containers: fakeContainers{w}, Gate: g}), g
}

func TestStopStopsContainersBeforeThePod(t *testing.T) {
	w := newWorld()
	c, _ := newCoordinator(w)
	if err := c.Stop(context.Background(), podID[:6]); err != nil { // a prefix, as the kubelet may send
		t.Fatal(err)
	}
	if got, want := w.steps(), []string{"stop containers", "stop pod"}; !slices.Equal(got, want) {
		t.Errorf("steps %q; want %q", got, want)
	}
}

func TestRemoveOrder(t *testing.T) {
	w := newWorld()
	w.ctrs["c1"] = podID
	c, g := newCoordinator(w)
	if err := c.Remove(context.Background(), podID); err != nil {
		t.Fatal(err)
	}
	if got, want := w.steps(), []string{"stop containers", "stop pod", "remove containers", "remove pod"}; !slices.Equal(got, want) {
		t.Errorf("steps %q; want %q", got, want)
	}
	if len(w.leftOver) != 0 || len(w.ctrs) != 0 {
		t.Errorf("containers left: %v %v", w.leftOver, w.ctrs)
	}
	if n := g.size(); n != 0 {
		t.Errorf("%d gates kept after the pod was removed; want 0", n)
	}
}

// Stop and Remove of a pod that is not there succeed (api.proto) and ask
// nothing of either service.
func TestUnknownPod(t *testing.T) {
	for name, op := range map[string]func(*Coordinator) error{
		"stop":   func(c *Coordinator) error { return c.Stop(context.Background(), "nope") },
		"remove": func(c *Coordinator) error { return c.Remove(context.Background(), "nope") },
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld()
			c, g := newCoordinator(w)
			if err := op(c); err != nil {
				t.Errorf("got %v; want success", err)
			}
			if s := w.steps(); len(s) != 0 {
				t.Errorf("steps %q; want none", s)
			}
			if n := g.size(); n != 0 {
				t.Errorf("%d gates made for an unknown pod", n)
			}
		})
	}
}

// A container that cannot be stopped fails the call and leaves the pod
// Ready with its network: the kubelet's retry then does it all again.
func TestContainerStopFailureLeavesThePodReady(t *testing.T) {
	boom := errors.New("runc kill: boom")
	for name, op := range map[string]func(*Coordinator) error{
		"stop":   func(c *Coordinator) error { return c.Stop(context.Background(), podID) },
		"remove": func(c *Coordinator) error { return c.Remove(context.Background(), podID) },
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld()
			w.ctrs["c1"] = podID
			w.stopCtrErr = boom
			c, _ := newCoordinator(w)
			err := op(c)
			if !errors.Is(err, boom) || !strings.Contains(err.Error(), podID) {
				t.Errorf("got %v; want the container's error, naming the pod", err)
			}
			if got, want := w.steps(), []string{"stop containers"}; !slices.Equal(got, want) {
				t.Errorf("steps %q; want %q", got, want)
			}
			if st := w.pods[podID]; st != sandbox.Ready {
				t.Errorf("pod is %s; want %s", st, sandbox.Ready)
			}
			if _, ok := w.ctrs["c1"]; !ok {
				t.Error("the container went although it could not be stopped")
			}
		})
	}
}

// A removal after a failed stop finishes the whole job.
func TestRemoveAfterFailedStop(t *testing.T) {
	w := newWorld()
	w.ctrs["c1"] = podID
	w.stopCtrErr = errors.New("boom")
	c, g := newCoordinator(w)
	if err := c.Stop(context.Background(), podID); err == nil {
		t.Fatal("stop succeeded; want the container's error")
	}
	w.mu.Lock()
	w.stopCtrErr, w.journal = nil, nil
	w.mu.Unlock()
	if err := c.Remove(context.Background(), podID); err != nil {
		t.Fatal(err)
	}
	if got, want := w.steps(), []string{"stop containers", "stop pod", "remove containers", "remove pod"}; !slices.Equal(got, want) {
		t.Errorf("steps %q; want %q", got, want)
	}
	if _, err := (fakePods{w}).Get(podID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("pod after the removal: %v; want NotFound", err)
	}
	if len(w.ctrs) != 0 || len(w.leftOver) != 0 {
		t.Errorf("containers left: %v %v", w.ctrs, w.leftOver)
	}
	if n := g.size(); n != 0 {
		t.Errorf("%d gates kept after the pod was removed; want 0", n)
	}
	// And again: the pod is gone, which is success.
	if err := c.Remove(context.Background(), podID); err != nil {
		t.Errorf("second removal: %v", err)
	}
}

// A container that cannot be removed fails the removal and leaves the pod,
// stopped, for the retry; its gate stays.
func TestContainerRemoveFailureKeepsThePod(t *testing.T) {
	w := newWorld()
	w.ctrs["c1"] = podID
	w.removeCtrErr = errors.New("layer busy")
	c, g := newCoordinator(w)
	if err := c.Remove(context.Background(), podID); !errors.Is(err, w.removeCtrErr) {
		t.Fatalf("got %v; want the container's error", err)
	}
	if got, want := w.steps(), []string{"stop containers", "stop pod", "remove containers"}; !slices.Equal(got, want) {
		t.Errorf("steps %q; want %q", got, want)
	}
	if st, ok := w.pods[podID]; !ok || st != sandbox.NotReady {
		t.Errorf("pod is %q (there: %v); want it kept, %s", st, ok, sandbox.NotReady)
	}
	if n := g.size(); n != 1 {
		t.Errorf("%d gates; want the pod's kept", n)
	}
	w.removeCtrErr = nil
	if err := c.Remove(context.Background(), podID); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if len(w.pods) != 0 || len(w.ctrs) != 0 || g.size() != 0 {
		t.Errorf("after the retry: pods %v, containers %v, %d gates; want none", w.pods, w.ctrs, g.size())
	}
}

// While a stop or removal runs no container is admitted into the pod, and
// once it is over a creation finds the pod not ready, or gone.
func TestStopAndRemoveExcludeCreations(t *testing.T) {
	for _, tc := range []struct {
		name string
		op   func(*Coordinator) error
		want error
	}{
		{"stop", func(c *Coordinator) error { return c.Stop(context.Background(), podID) }, errdefs.ErrFailedPrecondition},
		{"remove", func(c *Coordinator) error { return c.Remove(context.Background(), podID) }, errdefs.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			c, g := newCoordinator(w)
			admittedDuring := false
			w.onStopCtrs = func() {
				l := g.of(podID)
				if l.TryRLock() {
					admittedDuring = true
					l.RUnlock()
				}
			}
			if err := tc.op(c); err != nil {
				t.Fatal(err)
			}
			if admittedDuring {
				t.Error("a container could be admitted while the pod's containers were being stopped")
			}
			if err := (fakeContainers{w}).create(g, podID, "late"); !errors.Is(err, tc.want) {
				t.Errorf("create after the %s: %v; want %v", tc.name, err, tc.want)
			}
			if len(w.ctrs) != 0 {
				t.Errorf("containers %v; want none", w.ctrs)
			}
		})
	}
}

// A removal asked for while a creation is under way waits for it, and
// removes the container it made.
func TestRemoveWaitsForCreationUnderWay(t *testing.T) {
	w := newWorld()
	c, g := newCoordinator(w)
	release, err := g.Admit(podID)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Remove(context.Background(), podID) }()
	// Wait until the removal waits for the gate: a reader is then refused.
	l := g.of(podID)
	deadline := time.Now().Add(time.Minute)
	for l.TryRLock() {
		l.RUnlock()
		select {
		case err := <-done:
			t.Fatalf("the removal finished (%v) while a creation was admitted", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the removal never waited for the gate")
		}
		runtime.Gosched()
	}
	if s := w.steps(); len(s) != 0 {
		t.Errorf("steps %q while a creation was admitted; want none", s)
	}
	w.mu.Lock()
	w.ctrs["made"] = podID // what the creation made, before it releases
	w.mu.Unlock()
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(w.ctrs) != 0 || len(w.leftOver) != 0 {
		t.Errorf("containers left after the removal: %v %v", w.ctrs, w.leftOver)
	}
}

// Creations racing a removal: each either fails (the pod is not ready, or
// gone) or makes a container the removal then removes. None is left in a
// removed pod.
func TestConcurrentCreateAndRemove(t *testing.T) {
	for round := range 50 {
		w := newWorld()
		c, g := newCoordinator(w)
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = (fakeContainers{w}).create(g, podID, fmt.Sprintf("c%d", i))
			}()
		}
		var removeErr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			removeErr = c.Remove(context.Background(), podID)
		}()
		wg.Wait()
		if removeErr != nil {
			t.Fatalf("round %d: remove: %v", round, removeErr)
		}
		for i, err := range errs {
			if err != nil && !errors.Is(err, errdefs.ErrNotFound) && !errors.Is(err, errdefs.ErrFailedPrecondition) {
				t.Errorf("round %d: create %d: %v; want success, NotFound or FailedPrecondition", round, i, err)
			}
		}
		if len(w.ctrs) != 0 || len(w.leftOver) != 0 {
			t.Fatalf("round %d: containers left in a removed pod: %v, removed with the pod: %v", round, w.ctrs, w.leftOver)
		}
	}
}

// Concurrent stops and removals of one pod run one at a time: the journal
// is a sequence of whole stops and removals, never two interleaved.
func TestConcurrentStopAndRemove(t *testing.T) {
	w := newWorld()
	w.ctrs["c1"] = podID
	c, _ := newCoordinator(w)
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if i%2 == 0 {
				err = c.Stop(context.Background(), podID)
			} else {
				err = c.Remove(context.Background(), podID)
			}
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	steps := w.steps()
	stop := []string{"stop containers", "stop pod"}
	remove := append(slices.Clone(stop), "remove containers", "remove pod")
	for rest := steps; len(rest) > 0; {
		switch {
		case len(rest) >= len(remove) && slices.Equal(rest[:len(remove)], remove):
			rest = rest[len(remove):]
		case slices.Equal(rest[:min(len(stop), len(rest))], stop):
			rest = rest[len(stop):]
		default:
			t.Fatalf("steps %q: operations on one pod interleaved", steps)
		}
	}
	if _, err := (fakePods{w}).Get(podID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("pod: %v; want it removed", err)
	}
}

// TestRecoverPodsFirst: start-up settles the pods before the containers,
// and a pod recovery that fails leaves the containers' for the next start.
func TestRecoverPodsFirst(t *testing.T) {
	w := newWorld()
	c := New(Options{Pods: fakePods{w}, Containers: fakeContainers{w}, Gate: NewGate(fakePods{w})})
	if err := c.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := w.steps(), []string{"recover pods", "recover containers"}; !slices.Equal(got, want) {
		t.Fatalf("Recover did %q; want %q", got, want)
	}

	w = newWorld()
	w.recoverErr = map[string]error{"pods": errors.New("disk gone")}
	c = New(Options{Pods: fakePods{w}, Containers: fakeContainers{w}, Gate: NewGate(fakePods{w})})
	if err := c.Recover(context.Background()); err == nil || !strings.Contains(err.Error(), "disk gone") {
		t.Fatalf("Recover with a failing pod recovery = %v; want its error", err)
	}
	if got, want := w.steps(), []string{"recover pods"}; !slices.Equal(got, want) {
		t.Fatalf("Recover after a failed pod recovery did %q; want %q", got, want)
	}
}
