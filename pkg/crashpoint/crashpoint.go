// Package crashpoint lets tests kill the daemon at a named point inside an
// operation, to show that what a crash leaves half-done is finished or
// undone at the next start, or stall it there, to show what a client that
// gives up meanwhile gets.
//
// The points exist only in a daemon built with the `crashpoints` build tag
// (make build-test, build-race: the binaries the end-to-end tests run). In
// every other build, the production `make build` among them, Hit is an
// empty function and nothing reads the variables below: an operator's
// environment can never kill, stall or panic the daemon.
//
// In a crashpoints build a point does nothing unless the daemon was started
// with CRI_RUNTIME_CRASH_AT naming it (reaching it then kills the process at
// once with SIGKILL, as the OOM killer or a power cut would: no deferred
// function, no flush) or CRI_RUNTIME_STALL_AT=<name>=<duration> (reaching
// it then sleeps that long), or CRI_RUNTIME_PANIC_AT naming it (reaching it
// then panics, to show that the goroutine it runs in recovers and logs the
// panic instead of taking the daemon down).
package crashpoint

// The variables that arm a point in a crashpoints build.
const (
	EnvVar      = "CRI_RUNTIME_CRASH_AT"
	StallEnvVar = "CRI_RUNTIME_STALL_AT"
	PanicEnvVar = "CRI_RUNTIME_PANIC_AT"
)

// Tag is the build tag that compiles the points in.
const Tag = "crashpoints"
