package daemon

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeSystemd listens where NOTIFY_SOCKET points, as systemd does for a
// Type=notify unit, and hands back what the daemon sends.
func fakeSystemd(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

// next returns the next datagram, failing the test after a deadline.
func next(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestNotifySendsState(t *testing.T) {
	conn := fakeSystemd(t)
	n := newNotifier(quietLogger())
	for _, state := range []string{"READY=1", "STOPPING=1"} {
		n.notify(state)
		if got := next(t, conn); got != state {
			t.Errorf("got %q, want %q", got, state)
		}
	}
}

// Found in the VM (make test-vm): runc, started by conmon with our
// environment, took NOTIFY_SOCKET for its own and every container failed to
// start.
func TestNotifierKeepsSystemdsVariablesFromChildren(t *testing.T) {
	fakeSystemd(t)
	t.Setenv("WATCHDOG_USEC", "30000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	n := newNotifier(quietLogger())
	if n.socket == "" || n.watchdog != 30*time.Second {
		t.Errorf("notifier = %+v, want the socket and a 30s watchdog", n)
	}
	out, err := exec.Command("env").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID="} {
		if strings.Contains(string(out), v) {
			t.Errorf("a child process still sees %s…", v)
		}
	}
}

func TestNotifyWithoutSystemdIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "1000000")
	n := newNotifier(quietLogger())
	n.notify("READY=1") // must neither block nor fail
	n.startWatchdog(context.Background())()
}

func TestNotifyToAGoneSocketIsLoggedNotFatal(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone.sock"))
	newNotifier(quietLogger()).notify("READY=1")
}

func TestWatchdogInterval(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		name, usec, pid string
		want            time.Duration
	}{
		{"off", "", "", 0},
		{"WATCHDOG_USEC", "30000000", pid, 30 * time.Second},
		{"no WATCHDOG_PID means us", "2000000", "", 2 * time.Second},
		{"another process's watchdog", "2000000", "1", 0},
		{"garbage", "soon", pid, 0},
		{"zero", "0", pid, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WATCHDOG_USEC", tc.usec)
			t.Setenv("WATCHDOG_PID", tc.pid)
			if got := newNotifier(quietLogger()).watchdog; got != tc.want {
				t.Errorf("watchdog = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWatchdogPingsUntilStopped(t *testing.T) {
	conn := fakeSystemd(t)
	t.Setenv("WATCHDOG_USEC", "100000") // pings every 50ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	stop := newNotifier(quietLogger()).startWatchdog(context.Background())
	for i := 0; i < 3; i++ {
		if got := next(t, conn); got != "WATCHDOG=1" {
			t.Fatalf("ping %d: got %q, want WATCHDOG=1", i, got)
		}
	}
	stop()
	// Drain what was sent before stop returned; then nothing more may come.
	buf := make([]byte, 64)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if _, err := conn.Read(buf); err != nil {
			break
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := conn.Read(buf); err == nil {
		t.Errorf("ping after stop: %q", buf[:n])
	}
}

func TestWatchdogStopsWithContext(t *testing.T) {
	fakeSystemd(t)
	t.Setenv("WATCHDOG_USEC", "100000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	ctx, cancel := context.WithCancel(context.Background())
	stop := newNotifier(quietLogger()).startWatchdog(ctx)
	cancel()
	done := make(chan struct{})
	go func() { stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("watchdog did not stop when its context ended")
	}
}
