package daemon

import (
	"context"
	"log/slog"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
)

// The daemon speaks systemd's sd_notify protocol so that a Type=notify unit
// (contrib/systemd/cri-runtime.service) is "active" only once the CRI socket
// serves, shows "deactivating" while in-flight RPCs drain, and is restarted
// when the daemon hangs (WatchdogSec). Without NOTIFY_SOCKET — any start not
// by systemd — every call here is a no-op.

// sdNotify sends one state to the service manager, if there is one. A failure
// is logged and otherwise ignored: it must never stop the daemon.
func sdNotify(log *slog.Logger, state string) {
	sent, err := sddaemon.SdNotify(false, state)
	switch {
	case err != nil:
		log.Warn("notify systemd", "state", state, "err", err)
	case sent:
		log.Debug("notified systemd", "state", state)
	}
}

// watchdogInterval is how often to ping the watchdog: half of WATCHDOG_USEC,
// as sd_watchdog_enabled(3) recommends, or 0 when the watchdog is off (or
// meant for another process: WATCHDOG_PID).
func watchdogInterval(log *slog.Logger) time.Duration {
	usec, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("systemd watchdog settings ignored", "err", err)
		return 0
	}
	return usec / 2
}

// startWatchdog sends WATCHDOG=1 every half WATCHDOG_USEC until ctx is done
// or stop is called; stop returns once the pinger has. The pings come from
// their own goroutine, so they prove the process runs and schedules, not that
// every RPC is healthy.
func startWatchdog(ctx context.Context, log *slog.Logger) (stop func()) {
	every := watchdogInterval(log)
	if every <= 0 {
		return func() {}
	}
	log.Info("systemd watchdog on", "ping_every", every)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			sdNotify(log, sddaemon.SdNotifyWatchdog)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}
