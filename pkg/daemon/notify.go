package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
)

// The daemon speaks systemd's sd_notify protocol so that a Type=notify unit
// (contrib/systemd/cri-runtime.service) is "active" only once the CRI socket
// serves, shows "deactivating" while in-flight RPCs drain, and is restarted
// when the daemon hangs (WatchdogSec). Without NOTIFY_SOCKET — any start not
// by systemd — it does nothing.

// notifier sends sd_notify states to the service manager that started us.
type notifier struct {
	log      *slog.Logger
	socket   string        // NOTIFY_SOCKET; empty: not started by systemd
	watchdog time.Duration // WATCHDOG_USEC, 0 when off
}

// newNotifier takes systemd's NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID
// out of the environment. They are ours alone: conmon passes its environment
// to runc, and a runc that sees NOTIFY_SOCKET proxies the container's
// notifications to it — through a socket under its state directory whose
// path is too long to bind, so that every container fails to start.
func newNotifier(log *slog.Logger) *notifier {
	n := &notifier{log: log, socket: os.Getenv("NOTIFY_SOCKET")}
	wd, err := sddaemon.SdWatchdogEnabled(true) // unsets WATCHDOG_*
	if err != nil {
		log.Warn("systemd watchdog settings ignored", "err", err)
	}
	n.watchdog = wd
	os.Unsetenv("NOTIFY_SOCKET")
	return n
}

// notify sends one state, if systemd listens. A failure is logged and
// otherwise ignored: it must never stop the daemon.
func (n *notifier) notify(state string) {
	if n.socket == "" {
		return
	}
	if err := sendNotify(n.socket, state); err != nil {
		n.log.Warn("notify systemd", "state", state, "err", err)
		return
	}
	n.log.Debug("notified systemd", "state", state)
}

// sendNotify writes state to the unixgram socket at path ("@…" is abstract).
func sendNotify(path, state string) error {
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("dial %s: %w", path, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("write to %s: %w", path, err)
	}
	return nil
}

// startWatchdog sends WATCHDOG=1 every half WATCHDOG_USEC, as
// sd_watchdog_enabled(3) recommends, until ctx is done or stop is called;
// stop returns once the pinger has. The pings come from their own goroutine,
// so they prove the process runs and schedules, not that every RPC is healthy.
func (n *notifier) startWatchdog(ctx context.Context) (stop func()) {
	every := n.watchdog / 2
	if n.socket == "" || every <= 0 {
		return func() {}
	}
	n.log.Info("systemd watchdog on", "ping_every", every)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			n.notify(sddaemon.SdNotifyWatchdog)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}
