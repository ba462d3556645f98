package e2e

// CheckpointContainer's errors, and what a node where CRIU does not work
// answers. Checkpoint and restore themselves need a kernel CRIU accepts:
// the VM lane checks them end to end (hack/vm/checkpoint.sh).

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestCheckpointContainer(t *testing.T) {
	t.Parallel()
	d, _ := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "checkpoint")
	counter := shCfg("counter", `i=0; while true; do i=$((i+1)); echo $i; sleep 1; done`)
	id := runCtr(t, d, pod, podCfg, counter)
	done := runCtr(t, d, pod, podCfg, shCfg("done", "true"))
	d.WaitExited(t, done)
	dir := t.TempDir()
	archive := filepath.Join(dir, "cp.tar")

	checkpoint := func(id, location string) error {
		return d.Runtime.CheckpointContainer(ctxT(t), &runtimeapi.CheckpointContainerRequest{ContainerId: id, Location: location})
	}
	for _, tc := range []struct {
		name, id, location string
		want               codes.Code
	}{
		{"relative location", id, "cp.tar", codes.InvalidArgument},
		{"location in the runtime's root", id, filepath.Join(d.Root, "cp.tar"), codes.InvalidArgument},
		{"location in the runtime's state", id, filepath.Join(d.State, "cp.tar"), codes.InvalidArgument},
		{"location a directory", id, dir, codes.InvalidArgument},
		{"unknown container", "0123456789abcdef", archive, codes.NotFound},
		{"exited container", done, archive, codes.FailedPrecondition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkpoint(tc.id, tc.location); status.Code(err) != tc.want {
				t.Fatalf("CheckpointContainer = %v; want %v", err, tc.want)
			}
		})
	}

	// crictl info: whether checkpoint/restore works here, and why not.
	st, err := d.Runtime.Status(ctxT(t), true)
	if err != nil {
		t.Fatal(err)
	}
	var criu struct {
		Available bool
		Reason    string
	}
	if err := json.Unmarshal([]byte(st.GetInfo()["checkpoint"]), &criu); err != nil {
		t.Fatalf("status info has no checkpoint document: %v (%v)", err, st.GetInfo())
	}
	t.Logf("checkpoint/restore: available %v, reason %q", criu.Available, criu.Reason)
	if criu.Available {
		t.Skip("CRIU works on this node: the VM lane checks checkpoint and restore (hack/vm/checkpoint.sh)")
	}
	if criu.Reason == "" {
		t.Fatal("checkpoint/restore is not available and the status says no reason")
	}
	t.Run("CRIU not available", func(t *testing.T) {
		err := checkpoint(id, archive)
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), criu.Reason) {
			t.Fatalf("CheckpointContainer = %v; want FailedPrecondition with CRIU's reason %q", err, criu.Reason)
		}
		if _, err := os.Stat(archive); !os.IsNotExist(err) {
			t.Errorf("a failed checkpoint left %s: %v", archive, err)
		}
	})
	t.Run("restore not available", func(t *testing.T) {
		if err := os.WriteFile(archive, []byte("not really"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := shCfg("restored", "true")
		cfg.Image = &runtimeapi.ImageSpec{Image: archive}
		_, err := d.Runtime.CreateContainer(ctxT(t), pod, cfg, podCfg)
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), criu.Reason) {
			t.Fatalf("CreateContainer from an archive = %v; want FailedPrecondition with CRIU's reason", err)
		}
	})
	if st := d.CtrStatus(t, id); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("the container is %v after the failed checkpoints; want running", st.State)
	}
}
