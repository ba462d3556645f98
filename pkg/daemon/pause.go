package daemon

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cri-runtime/cri-runtime/pkg/cgroup"
)

// pause is the init of a pod whose containers share one PID namespace
// (started by pkg/sandbox, never by users). It first joins the pod's cgroup
// (when given one; on cgroup v2 a leaf under it, cgroup.PodInit). As PID 1 it must reap the orphans the containers leave;
// otherwise it waits, using no CPU, until it is told to stop.
func pause(ctx context.Context, cgroupPath string) error {
	if cgroupPath != "" {
		if err := cgroup.Join(cgroup.PodInit(cgroupPath)); err != nil {
			return err
		}
	}
	children := make(chan os.Signal, 16)
	signal.Notify(children, syscall.SIGCHLD)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-children:
			for {
				var ws syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
		}
	}
}
