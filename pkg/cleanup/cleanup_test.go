package cleanup

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func testLog() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

// Steps run last first, each once, and the stack is empty afterwards.
func TestRunOrder(t *testing.T) {
	log, _ := testLog()
	s := New(log, "roll back")
	var got []string
	for _, name := range []string{"a", "b", "c"} {
		s.Push(name, func(context.Context) error { got = append(got, name); return nil })
	}
	if err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "c,b,a" {
		t.Fatalf("ran %v, want c,b,a", got)
	}
	if err := s.Run(context.Background()); err != nil || len(got) != 3 {
		t.Fatalf("a second Run ran steps again: %v, %v", got, err)
	}
}

func TestOnError(t *testing.T) {
	for _, tc := range []struct {
		name    string
		retErr  error
		wantRan bool
	}{
		{"success releases", nil, false},
		{"failure runs", errors.New("step 3 failed"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, _ := testLog()
			ran := false
			f := func() (retErr error) {
				s := New(log, "roll back")
				defer s.OnError(context.Background(), &retErr)
				s.Push("undo", func(context.Context) error { ran = true; return nil })
				return tc.retErr
			}
			if err := f(); err != tc.retErr {
				t.Fatalf("error %v, want %v", err, tc.retErr)
			}
			if ran != tc.wantRan {
				t.Fatalf("ran %v, want %v", ran, tc.wantRan)
			}
		})
	}
}

func TestRelease(t *testing.T) {
	s := New(nil, "roll back")
	s.Push("undo", func(context.Context) error { t.Error("a released step ran"); return nil })
	s.Release()
	if err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// The caller's context is often what failed: the steps still get a live
// context, with the caller's values.
func TestCallerCancellationDoesNotCancelSteps(t *testing.T) {
	type key struct{}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "req-1"))
	cancel()
	s := New(nil, "roll back")
	s.Push("undo", func(ctx context.Context) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if ctx.Value(key{}) != "req-1" {
			t.Error("the step lost the caller's values")
		}
		if _, ok := ctx.Deadline(); !ok {
			t.Error("the step's context has no deadline")
		}
		return nil
	})
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// A step that waits on its context ends when the stack's timeout passes,
// and the step after it still gets a fresh budget.
func TestTimeoutBoundsEachStep(t *testing.T) {
	s := New(nil, "roll back").WithTimeout(10 * time.Millisecond)
	nextOK := false
	s.Push("next", func(ctx context.Context) error { nextOK = ctx.Err() == nil; return nil })
	s.Push("wedged", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	err := s.Run(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want the wedged step's deadline", err)
	}
	if !nextOK {
		t.Fatal("the step after a timed-out one got an expired context")
	}
}

// Every failure is logged with its step's name and joined into the
// error; a panic is one more failure, and the steps before it still run.
func TestErrorsJoinedAndLogged(t *testing.T) {
	log, buf := testLog()
	s := New(log, "roll back a failed thing", "pod", "p1")
	errA, errC := errors.New("a broke"), errors.New("c broke")
	ranA := false
	s.Push("step a", func(context.Context) error { ranA = true; return errA })
	s.Push("step b", func(context.Context) error { var m map[string]int; m["x"]++; return nil })
	s.Push("step c", func(context.Context) error { return errC })
	err := s.Run(context.Background())
	if !ranA {
		t.Fatal("a panic in one step stopped the steps after it")
	}
	if !errors.Is(err, errA) || !errors.Is(err, errC) {
		t.Fatalf("error %v does not hold both failures", err)
	}
	for _, want := range []string{"step a: a broke", "step c: c broke", "panic"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	logs := buf.String()
	for _, want := range []string{`step="step a"`, `step="step c"`, `step="step b"`, "pod=p1", `msg="roll back a failed thing"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

// OnError adds the rollback's failures to the caller's error as text:
// the caller's error keeps its own sentinel, and the rollback's does not
// leak into it (the gRPC code is that of the failure).
func TestOnErrorKeepsTheFailuresCode(t *testing.T) {
	f := func() (retErr error) {
		s := New(nil, "roll back")
		defer s.OnError(context.Background(), &retErr)
		s.Push("delete the record", func(context.Context) error { return errdefs.ErrNotFound })
		return errdefs.ErrAlreadyExists
	}
	err := f()
	if !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("error %v lost the failure's sentinel", err)
	}
	if errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("error %v carries the rollback's sentinel", err)
	}
	if !strings.Contains(err.Error(), "roll back: delete the record") {
		t.Fatalf("error %q does not tell of the rollback's failure", err)
	}
}
