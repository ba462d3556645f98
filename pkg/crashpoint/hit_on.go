//go:build crashpoints

package crashpoint

import (
	"os"
	"strings"
	"syscall"
	"time"
)

// Enabled tells whether this build has the points (the crashpoints tag).
const Enabled = true

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
