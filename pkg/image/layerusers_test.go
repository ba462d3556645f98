package image

import (
	"sync/atomic"
	"testing"
	"time"
)

// A removal asked for while a user (a slow pull) runs neither waits for it
// nor makes later users wait: it runs when the last user leaves. With a
// sync.RWMutex write lock taken by the removal, the second enter blocked
// until the slow user left.
func TestLayerUsersRemovalNeverBlocksUsers(t *testing.T) {
	var g layerUsers
	var removals atomic.Int32
	remove := func() { removals.Add(1) }

	g.enter() // the slow pull
	asked := make(chan struct{})
	go func() { g.removeSoon(remove); close(asked) }() // the failed pull's cleanup
	select {
	case <-asked:
	case <-time.After(10 * time.Second):
		t.Fatal("removeSoon waited for the user in flight")
	}
	if n := removals.Load(); n != 0 {
		t.Fatalf("removal ran %d times while a user was in", n)
	}
	entered := make(chan struct{})
	go func() { g.enter(); close(entered) }() // a CreateContainer
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("a new user waited behind the pending removal")
	}
	g.leave(remove)
	if n := removals.Load(); n != 0 {
		t.Fatalf("removal ran %d times while a user was still in", n)
	}
	g.leave(remove) // the last user
	if n := removals.Load(); n != 1 {
		t.Fatalf("removal ran %d times once all users left; want 1", n)
	}
	g.enter()
	g.leave(remove)
	if n := removals.Load(); n != 1 {
		t.Fatalf("removal ran again (%d) without being asked", n)
	}
}

func TestLayerUsersRemovalRunsAtOnceWhenIdle(t *testing.T) {
	var g layerUsers
	ran := false
	g.removeSoon(func() { ran = true })
	if !ran {
		t.Fatal("removal with no user did not run at once")
	}
}
