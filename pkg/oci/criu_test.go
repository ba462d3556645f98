package oci

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// TestCRIUErrors: the reason kept is CRIU's error lines, as this host's
// kernel makes `criu check` print them.
func TestCRIUErrors(t *testing.T) {
	out := "Warn (criu/kerndat.c:1): something harmless\n" +
		"Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds\n" +
		"Error (criu/crtools.c:260): Could not initialize kernel features detection.\n"
	got := criuErrors(out, errors.New("exit status 1"))
	want := "Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds; Error (criu/crtools.c:260): Could not initialize kernel features detection."
	if got != want {
		t.Fatalf("criuErrors = %q; want %q", got, want)
	}
	if got := criuErrors("", errors.New("signal: killed")); got != "signal: killed" {
		t.Fatalf("criuErrors without output = %q", got)
	}
}

func TestCRIUMissing(t *testing.T) {
	c := NewCRIU("no-such-criu-binary", slog.New(slog.NewTextHandler(io.Discard, nil)))
	err := c.Check(context.Background())
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "not found on PATH") {
		t.Fatalf("Check = %v; want FailedPrecondition saying CRIU is not installed", err)
	}
	if st := c.Status(context.Background()); st.Available || st.Reason == "" {
		t.Fatalf("Status = %+v", st)
	}
}
