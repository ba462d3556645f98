package container

import (
	"context"
	"errors"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// The container state machine, as the code needs it: every transition
// listed here is allowed, no other is.
func TestTransitions(t *testing.T) {
	allowed := [][2]State{
		{"", creating}, {"", Created}, // write-ahead, CreateContainer
		{Created, Running},                      // StartContainer, or reconcile
		{Created, Exited},                       // reconcile: the process was lost
		{Running, Exited},                       // its exit
		{Created, removing}, {Exited, removing}, // RemoveContainer's mark
	}
	n := 0
	for _, tos := range transitions {
		n += len(tos)
	}
	if n != len(allowed) {
		t.Fatalf("the table allows %d transitions; the lifecycle needs %d", n, len(allowed))
	}
	for _, tr := range allowed {
		if !transitions.Allowed(tr[0], tr[1]) {
			t.Errorf("%q → %q refused", tr[0], tr[1])
		}
	}
	for _, tr := range [][2]State{
		{"", Running}, {"", Exited}, {"", removing},
		{creating, Running}, {Created, creating}, {Running, Created}, {Running, removing},
		{Exited, Running}, {Exited, Created}, {removing, Created}, {removing, Exited},
	} {
		if transitions.Allowed(tr[0], tr[1]) {
			t.Errorf("%q → %q allowed", tr[0], tr[1])
		}
	}
	if got := lifecycle(&Container{State: Exited, Removing: true}); got != removing {
		t.Errorf("lifecycle of a container marked for removal = %q", got)
	}
}

// A refused transition reaches neither the live record nor the file.
func TestRefusedTransitionChangesNothing(t *testing.T) {
	f := newFixture(t)
	s := f.service(t)
	c, err := s.Create(context.Background(), request("a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.update(c.ID, func(c *Container) error { c.State, c.Pid = Created, 7; return nil })
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("running → created = %v; want FailedPrecondition", err)
	}
	if got, _ := s.Get(c.ID); got.State != Running || got.Pid == 7 {
		t.Fatalf("live record changed: %+v", got)
	}
	if got, _ := f.service(t).Get(c.ID); got.State != Running || got.Pid == 7 {
		t.Fatalf("record on disk changed: %+v", got)
	}
}
