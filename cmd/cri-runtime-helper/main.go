// Command cri-runtime-helper is what cri-runtime runs besides runc and
// conmon: a pod's init ("pause") and the subreaper of exec'd commands
// ("reap-exec"); see pkg/helper. It is small on purpose: it starts with
// every exec and lives as long as a pod that shares a PID namespace.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cri-runtime/cri-runtime/pkg/helper"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code, ok := helper.Run(ctx, os.Args[1:], os.Stderr)
	stop()
	if !ok {
		fmt.Fprintln(os.Stderr, "usage: cri-runtime-helper pause [CGROUP] | reap-exec PIDFILE RUNC ARGS...")
		code = 2
	}
	os.Exit(code)
}
