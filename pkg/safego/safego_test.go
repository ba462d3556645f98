package safego

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A panic in a goroutine started by Go is logged with its name, value and
// stack, and the process (this test binary) goes on: without the recovery
// the test binary would die here.
func TestGoRecoversAndLogs(t *testing.T) {
	var out lockedBuffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	done := make(chan struct{})
	Go(log, "test worker", func() {
		defer close(done)
		var m map[string]int
		m["boom"]++ // assignment to a nil map panics
	})
	<-done
	// The deferred log runs after close(done): wait for it.
	for i := 0; !strings.Contains(out.String(), "test worker"); i++ {
		if i > 1000 {
			t.Fatalf("no panic logged; log: %q", out.String())
		}
		waitABit()
	}
	got := out.String()
	for _, want := range []string{"level=ERROR", "goroutine=\"test worker\"", "assignment to entry in nil map", "safego_test.go"} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
}

func TestGoRunsWithoutPanic(t *testing.T) {
	done := make(chan int)
	Go(nil, "ok", func() { done <- 42 })
	if v := <-done; v != 42 {
		t.Fatalf("got %d", v)
	}
}

// Recover with a nil logger uses slog.Default.
func TestRecoverNilLogger(t *testing.T) {
	var out lockedBuffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&out, nil)))
	defer slog.SetDefault(prev)
	func() {
		defer Recover(nil, "inline")
		panic("x")
	}()
	if !strings.Contains(out.String(), "goroutine=inline") {
		t.Fatalf("log: %q", out.String())
	}
}

func waitABit() { <-time.After(time.Millisecond) }
