package cgroup

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestCPURate(t *testing.T) {
	var s Sampler
	t0 := time.Unix(100, 0)
	if r := s.rate("pod", t0, 1_000); r != nil {
		t.Fatalf("first sample has a rate: %d", *r)
	}
	r := s.rate("pod", t0.Add(2*time.Second), 1_000+1_000_000_000)
	if r == nil || *r != 500_000_000 {
		t.Fatalf("rate = %v; want half a core", r)
	}
	if r := s.rate("pod", t0.Add(3*time.Second), 5); r != nil {
		t.Fatal("a counter that went backwards (a new cgroup) must not give a rate")
	}
	s.Forget("pod")
	if r := s.rate("pod", t0.Add(4*time.Second), 10); r != nil {
		t.Fatal("a forgotten key must start over")
	}
}

func TestEnsureAndRemove(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating cgroups needs root")
	}
	base := fmt.Sprintf("/crirt-unit-%d", os.Getpid())
	leaf := base + "/pod/ctr"
	top, err := Ensure(leaf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Remove(leaf, base) })
	if top != base || !Exists(leaf) {
		t.Fatalf("Ensure = %q; want it to create from %s, and %s to exist", top, base, leaf)
	}
	if again, err := Ensure(leaf); err != nil || again != "" {
		t.Fatalf("Ensure of an existing cgroup = %q, %v; want nothing created", again, err)
	}
	s, err := Stats(&Sampler{}, leaf)
	if err != nil || s.CPU == nil || s.Memory == nil || s.Timestamp.IsZero() || s.Tasks == nil || s.Tasks.Processes != 0 {
		t.Fatalf("Stats = %+v, %v; want CPU, memory and no processes", s, err)
	}
	sibling := base + "/pod/other"
	if _, err := Ensure(sibling); err != nil {
		t.Fatal(err)
	}
	if err := Remove(leaf, base); err != nil {
		t.Fatal(err)
	}
	if Exists(leaf) || !Exists(sibling) {
		t.Fatalf("after Remove: leaf exists %v, sibling exists %v; want the shared parents kept for the sibling", Exists(leaf), Exists(sibling))
	}
	if err := Remove(sibling, base); err != nil {
		t.Fatal(err)
	}
	if Exists(base) {
		t.Fatalf("%s left after removing everything made under it", base)
	}
}

func TestControllers(t *testing.T) {
	got, err := Controllers()
	if err != nil {
		t.Fatal(err)
	}
	// Every Linux host runc runs on has these; which others it has varies.
	for _, c := range []string{"cpu", "memory", "pids"} {
		if !got[c] {
			t.Errorf("Controllers() = %v, lacks %q", got, c)
		}
	}
	for c := range got {
		if strings.HasPrefix(c, "name=") {
			t.Errorf("Controllers() = %v: %q is a named hierarchy, not a controller", got, c)
		}
	}
	t.Logf("controllers: %v", got)
}

func TestPodInit(t *testing.T) {
	for _, tc := range []struct {
		unified bool
		want    string
	}{
		{false, "/cri-runtime/pod-0123456789ab"},
		// A leaf of its own: no process may sit beside the containers' cgroups.
		{true, "/cri-runtime/pod-0123456789ab/pause"},
	} {
		if got := podInit("/cri-runtime/pod-0123456789ab", tc.unified); got != tc.want {
			t.Errorf("podInit(unified=%v) = %q, want %q", tc.unified, got, tc.want)
		}
	}
}
