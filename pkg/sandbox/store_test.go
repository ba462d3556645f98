package sandbox

import (
	"errors"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/record"
	"github.com/cri-runtime/cri-runtime/pkg/store"
)

// The pod state machine, as the code needs it: every transition listed
// here is allowed, no other is.
func TestTransitions(t *testing.T) {
	allowed := [][2]State{
		{"", creating}, {"", Ready}, // write-ahead, RunPodSandbox
		{Ready, NotReady},    // StopPodSandbox, or lost namespaces
		{NotReady, removing}, // RemovePodSandbox's mark, after its stop
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
		{"", NotReady}, {"", removing}, {creating, NotReady},
		{Ready, creating}, {Ready, removing}, {NotReady, Ready}, {removing, NotReady}, {removing, Ready},
	} {
		if transitions.Allowed(tr[0], tr[1]) {
			t.Errorf("%q → %q allowed", tr[0], tr[1])
		}
	}
}

// A refused transition reaches neither the live record nor the file.
func TestRefusedTransitionChangesNothing(t *testing.T) {
	s := store.New(t.TempDir(), kind)
	if err := s.Create(&Sandbox{ID: "p", State: Ready}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update("p", func(sb *Sandbox) error { sb.Removing = true; return nil }); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("marking a ready pod for removal = %v; want FailedPrecondition (it is stopped first)", err)
	}
	if _, err := s.Update("p", func(sb *Sandbox) error { sb.State = NotReady; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update("p", func(sb *Sandbox) error { sb.State = Ready; return nil }); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("NotReady → Ready = %v; want FailedPrecondition", err)
	}
	if got, _ := s.Get("p"); got.State != NotReady || got.Removing {
		t.Fatalf("live record: %+v", got)
	}
	var disk Sandbox
	if err := record.Load(s.Path("p"), &disk); err != nil || disk.State != NotReady || disk.Removing {
		t.Fatalf("record on disk: %+v, %v", disk, err)
	}
}
