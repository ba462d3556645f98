package handover

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

var errTaken = errors.New("taken")

// waitDone waits until the work for key has finished (or none is held).
func waitDone(t *testing.T, g *Group, key string) {
	t.Helper()
	g.mu.Lock()
	j := g.jobs[key]
	g.mu.Unlock()
	if j == nil {
		return
	}
	select {
	case <-j.done:
	case <-time.After(10 * time.Second):
		t.Fatal("work never finished")
	}
}

func TestCallersGivingUpHandTheResultOn(t *testing.T) {
	var g Group
	var runs atomic.Int32
	made := false
	taken := func() error {
		if made {
			return errTaken
		}
		return nil
	}
	release := make(chan struct{})
	work := func(context.Context) (string, error) {
		runs.Add(1)
		<-release
		made = true
		return "obj", nil
	}
	// The first caller gives up while the work runs.
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() { _, err := g.Do(ctx, "k", time.Minute, taken, work); gaveUp <- err }()
	for runs.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("caller that gave up = %v; want context.Canceled", err)
	}
	// The work ends with nobody waiting; the retry receives its result.
	close(release)
	waitDone(t, &g, "k")
	if id, err := g.Do(context.Background(), "k", time.Minute, taken, work); err != nil || id != "obj" {
		t.Fatalf("retry = %q, %v; want obj", id, err)
	}
	// Received once: a duplicate hears what taken says.
	if _, err := g.Do(context.Background(), "k", time.Minute, taken, work); !errors.Is(err, errTaken) {
		t.Fatalf("duplicate = %v; want the taken error", err)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("work ran %d times; want once", n)
	}
}

func TestConcurrentCallersShareOneRun(t *testing.T) {
	var g Group
	var runs atomic.Int32
	release := make(chan struct{})
	work := func(context.Context) (string, error) { runs.Add(1); <-release; return "obj", nil }
	results := make(chan error, 2)
	for range 2 {
		go func() { _, err := g.Do(context.Background(), "k", time.Minute, nil, work); results <- err }()
	}
	for runs.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	var got, already int
	for range 2 {
		switch err := <-results; {
		case err == nil:
			got++
		case errors.Is(err, errdefs.ErrAlreadyExists):
			already++
		default:
			t.Fatal(err)
		}
	}
	if got != 1 || already != 1 || runs.Load() != 1 {
		t.Fatalf("received %d, refused %d, runs %d; want 1, 1, 1", got, already, runs.Load())
	}
}

func TestFailureAndForgetLeaveNothingToHandOver(t *testing.T) {
	var g Group
	fail := func(context.Context) (string, error) { return "", errTaken }
	if _, err := g.Do(context.Background(), "k", time.Minute, nil, fail); !errors.Is(err, errTaken) {
		t.Fatalf("failed work = %v", err)
	}
	ok := func(context.Context) (string, error) { return "obj", nil }
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // gives up at once: the result stays unclaimed
	_, _ = g.Do(ctx, "k", time.Minute, nil, ok)
	waitDone(t, &g, "k")
	g.mu.Lock()
	_, held := g.jobs["k"]
	g.mu.Unlock()
	if !held {
		t.Fatal("an unclaimed result was dropped")
	}
	g.Forget("k") // its object is removed
	var runs atomic.Int32
	count := func(context.Context) (string, error) { runs.Add(1); return "new", nil }
	if id, err := g.Do(context.Background(), "k", time.Minute, nil, count); err != nil || id != "new" || runs.Load() != 1 {
		t.Fatalf("after Forget = %q, %v (runs %d); want new work", id, err, runs.Load())
	}
}

// A panic in the work (a CreateContainer's, run on a goroutine of its
// own that no gRPC interceptor covers) fails the call instead of killing
// the daemon, and leaves nothing to hand over: the retry runs again.
func TestPanickingWorkFails(t *testing.T) {
	var g Group
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := g.Do(ctx, "k", time.Minute, nil, func(context.Context) (string, error) { panic("boom") })
	if err == nil || !strings.Contains(err.Error(), "panic: boom") {
		t.Fatalf("Do with a panicking work = %v; want an error saying so", err)
	}
	id, err := g.Do(ctx, "k", time.Minute, nil, func(context.Context) (string, error) { return "ok", nil })
	if err != nil || id != "ok" {
		t.Fatalf("retry = %q, %v; want a fresh run", id, err)
	}
}
