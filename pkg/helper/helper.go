// Package helper holds the small programs the daemon starts besides
// runc and conmon: a pod's init when its containers share a PID namespace
// (Pause) and the subreaper that ExecSync and Exec run "runc exec" under
// (ReapExec). They run as cmd/cri-runtime-helper, a binary a fraction of
// the daemon's size that starts in about a millisecond and holds little
// memory while a pod lives; the daemon's own binary serves the same
// commands when the helper is not installed.
//
// Keep its imports small: everything imported is initialised and mapped
// in every pod's init and every exec.
package helper

import (
	"context"
	"fmt"
	"io"
)

// The contract of ReapExec, which pkg/oci relies on: when runc itself
// failed, it exits ReapExecFailed and writes the reason on stderr after
// ReapExecPrefix; otherwise it exits with the command's code.
const (
	ReapExecFailed = 125
	ReapExecPrefix = "cri-runtime reap-exec: "
)

// Run runs one helper command: "pause [CGROUP]" or "reap-exec PIDFILE
// RUNC ARGS...". It returns the process's exit code, and false when args
// name no helper command.
func Run(ctx context.Context, args []string, stderr io.Writer) (int, bool) {
	if len(args) == 0 {
		return 0, false
	}
	switch args[0] {
	case "reap-exec":
		return ReapExec(args[1:], stderr), true
	case "pause":
		if len(args) > 2 {
			fmt.Fprintln(stderr, "usage: pause [CGROUP]")
			return 2, true
		}
		cgroup := ""
		if len(args) == 2 {
			cgroup = args[1]
		}
		if err := Pause(ctx, cgroup); err != nil {
			fmt.Fprintln(stderr, "pause:", err)
			return 1, true
		}
		return 0, true
	}
	return 0, false
}
