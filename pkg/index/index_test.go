package index

import (
	"errors"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func TestFind(t *testing.T) {
	objs := map[string]int{"abc1": 1, "abc2": 2, "def": 3}
	for _, tc := range []struct {
		id    string
		want  int
		class error
	}{
		{"def", 3, nil},
		{"abc1", 1, nil},
		{"d", 3, nil},
		{"abc", 0, errdefs.ErrInvalidArgument},
		{"x", 0, errdefs.ErrNotFound},
		{"", 0, errdefs.ErrNotFound},
	} {
		got, err := Find(objs, tc.id, "thing")
		if tc.class != nil {
			if !errors.Is(err, tc.class) {
				t.Errorf("Find(%q) = %d, %v; want %v", tc.id, got, err, tc.class)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Find(%q) = %d, %v; want %d", tc.id, got, err, tc.want)
		}
	}
}

func TestLabelsMatch(t *testing.T) {
	pod := map[string]string{"app": "web", "tier": ""}
	for _, tc := range []struct {
		want map[string]string
		ok   bool
	}{
		{nil, true},
		{map[string]string{"app": "web"}, true},
		{map[string]string{"app": "web", "tier": ""}, true},
		{map[string]string{"app": "db"}, false},
		{map[string]string{"zone": ""}, false}, // absent is not empty
	} {
		if got := LabelsMatch(pod, tc.want); got != tc.ok {
			t.Errorf("LabelsMatch(%v, %v) = %v", pod, tc.want, got)
		}
	}
}

func TestNewID(t *testing.T) {
	a, b := NewID(), NewID()
	if len(a) != 64 || a == b {
		t.Fatalf("NewID() = %q, %q; want two different 64-digit IDs", a, b)
	}
}
