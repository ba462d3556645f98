// Package crashpoint lets tests kill the daemon at a named point inside an
// operation, to show that what a crash leaves half-done is finished or
// undone at the next start. A point does nothing unless the daemon was
// started with CRI_RUNTIME_CRASH_AT naming it; then reaching it kills the
// process at once with SIGKILL, as the OOM killer or a power cut would:
// no deferred function, no flush.
package crashpoint

import (
	"os"
	"syscall"
)

// EnvVar names the point to crash at.
const EnvVar = "CRI_RUNTIME_CRASH_AT"

var armed = os.Getenv(EnvVar)

// Hit kills the daemon if name is the armed point.
func Hit(name string) {
	if armed != "" && armed == name {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
