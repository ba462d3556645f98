// Package crashpoint lets tests kill the daemon at a named point inside an
// operation, to show that what a crash leaves half-done is finished or
// undone at the next start, or stall it there, to show what a client that
// gives up meanwhile gets. A point does nothing unless the daemon was
// started with CRI_RUNTIME_CRASH_AT naming it (reaching it then kills the
// process at once with SIGKILL, as the OOM killer or a power cut would: no
// deferred function, no flush) or CRI_RUNTIME_STALL_AT=<name>=<duration>
// (reaching it then sleeps that long), or CRI_RUNTIME_PANIC_AT naming it
// (reaching it then panics, to show that the goroutine it runs in recovers
// and logs the panic instead of taking the daemon down).
package crashpoint

import (
	"os"
	"strings"
	"syscall"
	"time"
)

// The variables that arm a point.
const (
	EnvVar      = "CRI_RUNTIME_CRASH_AT"
	StallEnvVar = "CRI_RUNTIME_STALL_AT"
	PanicEnvVar = "CRI_RUNTIME_PANIC_AT"
)

var (
	armed                   = os.Getenv(EnvVar)
	panicAt                 = os.Getenv(PanicEnvVar)
	stallName, stallSpec, _ = strings.Cut(os.Getenv(StallEnvVar), "=")
	stallFor, _             = time.ParseDuration(stallSpec)
)

// Hit kills the daemon if name is the armed point, stalls it, or panics.
func Hit(name string) {
	if panicAt != "" && panicAt == name {
		panic("crash point " + name + " (" + PanicEnvVar + ")")
	}
	if armed != "" && armed == name {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
	if stallFor > 0 && stallName == name {
		time.Sleep(stallFor)
	}
}
