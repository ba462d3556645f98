// Command cri-runtime is a Kubernetes CRI runtime. All wiring lives in
// pkg/daemon; main only handles re-exec, signals and the exit code.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.podman.io/storage/pkg/reexec"

	"github.com/cri-runtime/cri-runtime/pkg/daemon"
)

func main() {
	// containers/storage re-executes this binary for some layer operations.
	if reexec.Init() {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := daemon.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var coded daemon.ExitCoder
	switch {
	case errors.As(err, &coded):
		os.Exit(coded.ExitCode())
	case err != nil:
		fmt.Fprintln(os.Stderr, "cri-runtime:", err)
		os.Exit(1)
	}
}
