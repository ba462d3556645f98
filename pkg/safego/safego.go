// Package safego starts the daemon's own goroutines so that a panic in one
// is logged, with its stack, instead of killing the daemon: the gRPC
// recovery interceptor only covers the goroutine serving an RPC, and a
// daemon that dies on a bad record panics again on every restart.
package safego

import (
	"fmt"
	"log/slog"
	"runtime/debug"
)

// Go runs f in a new goroutine that recovers from a panic and logs it as
// an error naming what (e.g. "watch container exit"). log may be nil
// (slog.Default is used). The goroutine's work is lost; the daemon keeps
// serving.
func Go(log *slog.Logger, what string, f func()) {
	go func() {
		defer Recover(log, what)
		f()
	}()
}

// Recover, deferred at the top of a goroutine, logs a panic instead of
// letting it end the process. It must be called directly by defer.
func Recover(log *slog.Logger, what string) {
	if r := recover(); r != nil {
		logPanic(log, what, r)
	}
}

// Call runs f and turns a panic in it into an error, logged with its
// stack: for a goroutine whose result someone waits for, who must get an
// answer rather than wait forever.
func Call(log *slog.Logger, what string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			logPanic(log, what, r)
			err = fmt.Errorf("%s: internal error (panic: %v)", what, r)
		}
	}()
	return f()
}

func logPanic(log *slog.Logger, what string, r any) {
	if log == nil {
		log = slog.Default()
	}
	log.Error("recovered from a panic in a background goroutine; its work is lost", "goroutine", what,
		"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
}
