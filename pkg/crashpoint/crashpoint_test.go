package crashpoint_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/crashpoint"
)

// childEnv makes the test binary, run again by hit, reach a point instead of
// running the tests. The variables that arm points are read when the
// process starts, so each case needs a process of its own.
const childEnv = "CRASHPOINT_TEST_CHILD"

func TestMain(m *testing.M) {
	if name := os.Getenv(childEnv); name != "" {
		start := time.Now()
		crashpoint.Hit("some-other-point")
		crashpoint.Hit(name)
		fmt.Printf("survived after %v\n", time.Since(start))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// hit runs a child that reaches the point "p" with env set, and returns its
// output and how it ended.
func hit(t *testing.T, env string) (string, error) {
	t.Helper()
	// A safeguard only: a child that stalls for good is a failure.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	// GORACE: a child built with -race would sleep a second at exit.
	cmd.Env = append(os.Environ(), childEnv+"=p", env, "GORACE=atexit_sleep_ms=0")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func signalled(err error) syscall.Signal {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return ws.Signal()
		}
	}
	return 0
}

// Both builds are tested: `make test-unit` runs this package without the
// crashpoints tag (as `make build` builds the daemon) and with it (as the
// end-to-end tests' daemons are built).
func TestHit(t *testing.T) {
	t.Logf("crashpoints build: %v", crashpoint.Enabled)
	t.Run("crash", func(t *testing.T) {
		out, err := hit(t, crashpoint.EnvVar+"=p")
		if crashpoint.Enabled {
			if sig := signalled(err); sig != syscall.SIGKILL {
				t.Errorf("a process reaching its armed crash point ended with %v (%q); want SIGKILL", err, out)
			}
		} else if err != nil || !strings.Contains(out, "survived") {
			t.Errorf("without the %s tag, %s killed the process: %v %q", crashpoint.Tag, crashpoint.EnvVar, err, out)
		}
	})
	t.Run("panic", func(t *testing.T) {
		out, err := hit(t, crashpoint.PanicEnvVar+"=p")
		if crashpoint.Enabled {
			if err == nil || !strings.Contains(out, "panic: crash point p") {
				t.Errorf("a process reaching its armed panic point ended with %v (%q); want a panic", err, out)
			}
		} else if err != nil || !strings.Contains(out, "survived") {
			t.Errorf("without the %s tag, %s made the process panic: %v %q", crashpoint.Tag, crashpoint.PanicEnvVar, err, out)
		}
	})
	t.Run("stall", func(t *testing.T) {
		stall := "1h" // a stall that happened would end the child by the safeguard
		if crashpoint.Enabled {
			stall = "100ms"
		}
		out, err := hit(t, crashpoint.StallEnvVar+"=p="+stall)
		if err != nil || !strings.Contains(out, "survived after ") {
			t.Fatalf("child: %v %q", err, out)
		}
		took, err := time.ParseDuration(strings.TrimSpace(strings.TrimPrefix(out, "survived after ")))
		if err != nil {
			t.Fatalf("child said %q", out)
		}
		if crashpoint.Enabled && took < 100*time.Millisecond {
			t.Errorf("the armed point stalled the process %v; want at least 100ms", took)
		}
	})
}
