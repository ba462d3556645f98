package oci

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// CheckpointOptions say where runc and CRIU write a checkpoint.
type CheckpointOptions struct {
	ImageDir string // CRIU's images
	WorkDir  string // CRIU's log (dump.log) and work files
	// LeaveRunning keeps the container running after the dump, as the
	// kubelet's forensic checkpoints want; otherwise it is stopped.
	LeaveRunning bool
}

// Checkpoint dumps the running container's processes with `runc
// checkpoint`. It stays under its conmon. A failure carries the end of
// CRIU's log.
func (r *Runtime) Checkpoint(ctx context.Context, id string, o CheckpointOptions) error {
	args := []string{"checkpoint", "--image-path", o.ImageDir, "--work-path", o.WorkDir}
	if o.LeaveRunning {
		args = append(args, "--leave-running")
	}
	if _, err := r.runc(ctx, append(args, id)...); err != nil {
		return fmt.Errorf("checkpoint container %s: %w%s", id, err, criuLogErrors(filepath.Join(o.WorkDir, "dump.log")))
	}
	return nil
}

// criuLogErrors is CRIU's error lines from its log file, for an error
// message ("" when there are none).
func criuLogErrors(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, "Error (") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	if len(lines) == 0 {
		return ""
	}
	return " (CRIU: " + strings.Join(lines, "; ") + ")"
}

// Pause freezes every process of the container (runc pause: the cgroup
// freezer), so that a checkpoint of several containers is one cut.
func (r *Runtime) Pause(ctx context.Context, id string) error {
	_, err := r.runc(ctx, "pause", id)
	return err
}

// Resume thaws a paused container (runc resume).
func (r *Runtime) Resume(ctx context.Context, id string) error {
	_, err := r.runc(ctx, "resume", id)
	return err
}
