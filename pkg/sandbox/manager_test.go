package sandbox

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/record"
	"github.com/cri-runtime/cri-runtime/pkg/sandbox/cni"
)

// fakeNetwork hands out one address per pod; Attach can be made to fail or
// to wait for a release.
type fakeNetwork struct {
	mu       sync.Mutex
	fail     error
	gate     chan struct{} // when set, Attach waits for it to close
	attached map[string]bool
}

func (f *fakeNetwork) Attach(ctx context.Context, pod cni.Pod) (*cni.Attachment, error) {
	f.mu.Lock()
	gate, fail := f.gate, f.fail
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if fail != nil {
		return nil, fail
	}
	if _, err := os.Stat(pod.NetNS); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.attached[pod.ID] = true
	f.mu.Unlock()
	return &cni.Attachment{Network: "fake", IPs: []string{"10.1.2.3"}}, nil
}

func (f *fakeNetwork) Detach(_ context.Context, pod cni.Pod, _ *cni.Attachment) error {
	f.mu.Lock()
	delete(f.attached, pod.ID)
	f.mu.Unlock()
	return nil
}

func (f *fakeNetwork) DetachCurrent(ctx context.Context, pod cni.Pod) error {
	return f.Detach(ctx, pod, nil)
}

var _ Network = (*fakeNetwork)(nil)

func newTestManager(t *testing.T, root, state string, net *fakeNetwork) *Manager {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating namespaces needs root")
	}
	m, err := New(Options{Root: root, State: state, Network: net},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

func podConfig(name string) Config {
	// A parent cgroup that already exists, so tests create no cgroups.
	return Config{Metadata: Metadata{Name: name, Namespace: "ns", UID: "uid-" + name}, CgroupParent: "/"}
}

// mountsUnder counts mount points below dir.
func mountsUnder(t *testing.T, dir string) int {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			n++
		}
	}
	return n
}

func TestRunStopRemove(t *testing.T) {
	root, state := t.TempDir(), t.TempDir()
	net := &fakeNetwork{attached: map[string]bool{}}
	m := newTestManager(t, root, state, net)
	ctx := context.Background()

	sb, err := m.Run(ctx, podConfig("a"))
	if err != nil {
		t.Fatal(err)
	}
	if sb.State != Ready || len(sb.Namespaces) != 3 || !net.attached[sb.ID] || mountsUnder(t, state) != 4 {
		t.Fatalf("after Run: %+v, attached=%v, mounts=%d", sb, net.attached[sb.ID], mountsUnder(t, state))
	}
	if _, err := m.Run(ctx, podConfig("a")); !errors.Is(err, errdefs.ErrAlreadyExists) || !strings.Contains(err.Error(), sb.ID) {
		t.Fatalf("second Run with the same metadata = %v; want AlreadyExists naming %s", err, sb.ID)
	}

	// A restarted manager sees the same pod.
	m2 := newTestManager(t, root, state, net)
	if got, err := m2.Get(sb.ID[:8]); err != nil || got.ID != sb.ID || got.State != Ready || got.IPs()[0] != "10.1.2.3" {
		t.Fatalf("reloaded pod = %+v, %v", got, err)
	}

	for i := 0; i < 2; i++ {
		if err := m.Stop(ctx, sb.ID); err != nil {
			t.Fatalf("Stop #%d: %v", i, err)
		}
	}
	if got, _ := m.Get(sb.ID); got.State != NotReady || net.attached[sb.ID] {
		t.Fatalf("after Stop: state %s, attached %v", got.State, net.attached[sb.ID])
	}
	for i := 0; i < 2; i++ {
		if err := m.Remove(ctx, sb.ID); err != nil {
			t.Fatalf("Remove #%d: %v", i, err)
		}
	}
	if _, err := m.Get(sb.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Get after Remove = %v; want NotFound", err)
	}
	if n := mountsUnder(t, state); n != 0 {
		t.Fatalf("%d mounts left under the state dir", n)
	}
	if entries, _ := os.ReadDir(root + "/sandboxes"); len(entries) != 0 {
		t.Fatalf("records left: %v", entries)
	}
	if err := m.Stop(ctx, "unknown"); err != nil {
		t.Fatalf("Stop of an unknown pod = %v; want success", err)
	}
}

func TestFailedRunLeavesNothing(t *testing.T) {
	root, state := t.TempDir(), t.TempDir()
	net := &fakeNetwork{attached: map[string]bool{}, fail: errors.New("plugin exploded")}
	m := newTestManager(t, root, state, net)
	if _, err := m.Run(context.Background(), podConfig("a")); err == nil || !strings.Contains(err.Error(), "plugin exploded") {
		t.Fatalf("Run = %v; want the network's error", err)
	}
	if n := mountsUnder(t, state); n != 0 {
		t.Fatalf("%d mounts left after a failed Run", n)
	}
	for _, dir := range []string{state + "/sandboxes", root + "/sandboxes"} {
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("%s not empty after a failed Run: %v", dir, entries)
		}
	}
	if len(m.List(Filter{})) != 0 {
		t.Fatal("a failed pod is listed")
	}
	// The metadata is free again.
	net.mu.Lock()
	net.fail = nil
	net.mu.Unlock()
	sb, err := m.Run(context.Background(), podConfig("a"))
	if err != nil {
		t.Fatalf("Run after a failed one: %v", err)
	}
	if err := m.Remove(context.Background(), sb.ID); err != nil {
		t.Fatal(err)
	}
}

func TestRetryReceivesThePodItsClientGaveUpOn(t *testing.T) {
	net := &fakeNetwork{attached: map[string]bool{}, gate: make(chan struct{})}
	m := newTestManager(t, t.TempDir(), t.TempDir(), net)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := m.Run(ctx, podConfig("slow")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run past its deadline = %v; want DeadlineExceeded", err)
	}

	// The kubelet retries while the first creation is still running.
	type result struct {
		sb  *Sandbox
		err error
	}
	retry := make(chan result, 1)
	go func() {
		sb, err := m.Run(context.Background(), podConfig("slow"))
		retry <- result{sb, err}
	}()
	close(net.gate)
	r := <-retry
	if r.err != nil {
		t.Fatalf("retry = %v; want the pod", r.err)
	}
	pods := m.List(Filter{})
	if len(pods) != 1 || pods[0].ID != r.sb.ID {
		t.Fatalf("pods = %v; want exactly the one the retry received", pods)
	}
	// Once received, the pod is taken.
	if _, err := m.Run(context.Background(), podConfig("slow")); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("third Run = %v; want AlreadyExists", err)
	}
	if err := m.Remove(context.Background(), r.sb.ID); err != nil {
		t.Fatal(err)
	}
}

func TestRetryAfterCompletionReceivesThePod(t *testing.T) {
	net := &fakeNetwork{attached: map[string]bool{}, gate: make(chan struct{})}
	m := newTestManager(t, t.TempDir(), t.TempDir(), net)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := m.Run(ctx, podConfig("late")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run past its deadline = %v", err)
	}
	close(net.gate)
	// Wait, with a deadline, until the abandoned creation has finished.
	deadline := time.Now().Add(10 * time.Second)
	for len(m.List(Filter{})) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the abandoned creation never finished")
		}
		time.Sleep(5 * time.Millisecond)
	}
	sb, err := m.Run(context.Background(), podConfig("late"))
	if err != nil {
		t.Fatalf("retry after completion = %v; want the finished pod", err)
	}
	if err := m.Remove(context.Background(), sb.ID); err != nil {
		t.Fatal(err)
	}
}

func TestStartUpRemovesUnrecordedPodState(t *testing.T) {
	root, state := t.TempDir(), t.TempDir()
	net := &fakeNetwork{attached: map[string]bool{}}
	m := newTestManager(t, root, state, net)
	kept, err := m.Run(context.Background(), podConfig("kept"))
	if err != nil {
		t.Fatal(err)
	}
	lost, err := m.Run(context.Background(), podConfig("lost"))
	if err != nil {
		t.Fatal(err)
	}
	// The record of one pod is gone, as if a crash came before it was saved.
	if err := os.RemoveAll(m.store.Dir(lost.ID)); err != nil {
		t.Fatal(err)
	}
	m2 := newTestManager(t, root, state, net)
	if _, err := os.Stat(lost.Dir); !os.IsNotExist(err) {
		t.Fatalf("state of the unrecorded pod is still there: %v", err)
	}
	if n := mountsUnder(t, lost.Dir); n != 0 {
		t.Fatalf("%d mounts of the unrecorded pod left", n)
	}
	if _, err := m2.Get(kept.ID); err != nil || mountsUnder(t, kept.Dir) != 4 {
		t.Fatalf("recorded pod disturbed: %v, %d mounts", err, mountsUnder(t, kept.Dir))
	}
	if err := m2.Remove(context.Background(), kept.ID); err != nil {
		t.Fatal(err)
	}
}

func TestStartUpUndoesAnInterruptedRun(t *testing.T) {
	root, state := t.TempDir(), t.TempDir()
	net := &fakeNetwork{attached: map[string]bool{}}
	m := newTestManager(t, root, state, net)
	sb, err := m.Run(context.Background(), podConfig("cut"))
	if err != nil {
		t.Fatal(err)
	}
	// Make the pod look as if the daemon died after CNI ADD, before the
	// final save: its record still says "creating" and has no attachment.
	sb.State, sb.Network = creating, nil
	if err := record.Save(m.store.Path(sb.ID), sb); err != nil {
		t.Fatal(err)
	}

	m2 := newTestManager(t, root, state, net)
	if _, err := m2.Get(sb.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("interrupted pod is listed after start-up: %v", err)
	}
	if net.attached[sb.ID] {
		t.Fatal("CNI DEL did not run for the interrupted pod")
	}
	if n := mountsUnder(t, state); n != 0 {
		t.Fatalf("%d mounts of the interrupted pod left", n)
	}
	if _, err := os.Stat(sb.Dir); !os.IsNotExist(err) {
		t.Fatalf("pod directory left: %v", err)
	}
	if entries, _ := os.ReadDir(root + "/sandboxes"); len(entries) != 0 {
		t.Fatalf("record left: %v", entries)
	}
	// Its metadata is free again.
	again, err := m2.Run(context.Background(), podConfig("cut"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Remove(context.Background(), again.ID); err != nil {
		t.Fatal(err)
	}
}

// The network is attached while the rest of the pod is made: a step that
// fails meanwhile (here the init of a shared PID namespace, with no pause
// binary configured) waits for the ADD, then detaches what it attached;
// nothing is left, and nothing is detached that was never attached.
func TestRunFailingBesideTheNetworkDetachesIt(t *testing.T) {
	root, state := t.TempDir(), t.TempDir()
	gate := make(chan struct{})
	net := &fakeNetwork{attached: map[string]bool{}, gate: gate}
	m := newTestManager(t, root, state, net)
	cfg := podConfig("a")
	cfg.PIDMode = PIDPod
	done := make(chan error, 1)
	go func() { _, err := m.Run(context.Background(), cfg); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("Run returned %v while its CNI ADD was still running", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(gate)
	if err := <-done; !errors.Is(err, errNoPauseBinary) {
		t.Fatalf("Run = %v; want %v", err, errNoPauseBinary)
	}
	net.mu.Lock()
	left := len(net.attached)
	net.mu.Unlock()
	if left != 0 {
		t.Errorf("%d pods still attached after the failed Run", left)
	}
	if n := mountsUnder(t, state); n != 0 {
		t.Errorf("%d mounts left after a failed Run", n)
	}
}
