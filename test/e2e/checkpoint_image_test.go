package e2e

// Restore from a checkpoint image: an OCI image whose single layer holds a
// checkpoint archive's files and whose manifest carries the
// org.criu.checkpoint annotation, as buildah, Podman and CRI-O's users
// make them. Here (CRIU refused): FailedPrecondition with CRIU's reason.
// Where CRIU works (the VM lane): a counting container is checkpointed,
// made into such an image, pushed, pulled, and restored into a new pod.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// checkpointImage is the archive at path as a checkpoint image: one OCI
// layer with the archive's files at its root, and the annotation.
func checkpointImage(t *testing.T, archive []byte, name string) v1.Image {
	t.Helper()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(archive)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer, MediaType: types.OCILayer})
	if err != nil {
		t.Fatal(err)
	}
	return mutate.Annotations(img, map[string]string{"org.criu.checkpoint.container.name": name}).(v1.Image)
}

func TestCheckpointImage(t *testing.T) {
	reg := startRegistry(t, framework.RegistryOptions{}, framework.BusyboxImage)
	d := startDaemonFor(t, reg)
	cleanupPods(t, d)
	pull(t, d, framework.BusyboxImage, factsOf(t, framework.BusyboxImage))
	pushPull := func(t *testing.T, archive []byte) string {
		t.Helper()
		if _, err := reg.Push("library/counter-checkpoint", "latest", checkpointImage(t, archive, "counter")); err != nil {
			t.Fatal(err)
		}
		ref := "docker.io/library/counter-checkpoint:latest"
		if _, err := d.Images.PullImage(ctxT(t), spec(ref), nil, nil); err != nil {
			t.Fatalf("PullImage(%s): %v", ref, err)
		}
		return ref
	}

	st, err := d.Runtime.Status(ctxT(t), true)
	if err != nil {
		t.Fatal(err)
	}
	var criu struct {
		Available bool
		Reason    string
	}
	if err := json.Unmarshal([]byte(st.GetInfo()["checkpoint"]), &criu); err != nil {
		t.Fatalf("status info has no checkpoint document: %v", err)
	}
	if !criu.Available {
		// An archive that is not one: CRIU's absence is what is reported.
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: "config.dump", Mode: 0o600, Size: 2, Typeflag: tar.TypeReg})
		tw.Write([]byte("{}"))
		tw.Close()
		ref := pushPull(t, buf.Bytes())
		pod, podCfg := ctrPod(t, d, "cp-image")
		cfg := shCfg("restored", "true")
		cfg.Image = spec(ref)
		_, err := d.Runtime.CreateContainer(ctxT(t), pod, cfg, podCfg)
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), criu.Reason) {
			t.Fatalf("CreateContainer from a checkpoint image = %v; want FailedPrecondition with CRIU's reason %q", err, criu.Reason)
		}
		t.Skipf("CRIU does not work here (%s): the VM lane checks the restore from an image", criu.Reason)
	}

	pod, podCfg := ctrPod(t, d, "cp-image")
	counter := podCounter("counter")
	id := runCtr(t, d, pod, podCfg, counter)
	waitCount(t, logFile(podCfg, counter), 3)
	path := filepath.Join(t.TempDir(), "cp.tar")
	before := lastCount(logFile(podCfg, counter))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := d.Runtime.CheckpointContainer(ctx, &runtimeapi.CheckpointContainerRequest{ContainerId: id, Location: path}); err != nil {
		t.Fatalf("CheckpointContainer: %v\n%s", err, tail(d.Logs(), 20))
	}
	after := lastCount(logFile(podCfg, counter))
	archive, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ref := pushPull(t, archive)
	if err := d.Runtime.StopPodSandbox(ctxT(t), pod); err != nil {
		t.Fatal(err)
	}
	if err := d.Runtime.RemovePodSandbox(ctxT(t), pod); err != nil {
		t.Fatal(err)
	}

	pod2, podCfg2 := ctrPod(t, d, "cp-image-restored")
	restore := podCounter("counter")
	restore.Image = spec(ref)
	restore.Command = nil // the checkpoint's
	rid, err := d.Runtime.CreateContainer(ctx, pod2, restore, podCfg2)
	if err != nil {
		t.Fatalf("CreateContainer from the checkpoint image: %v\n%s", err, tail(d.Logs(), 20))
	}
	if err := d.Runtime.StartContainer(ctx, rid); err != nil {
		t.Fatalf("StartContainer (restore): %v\n%s", err, tail(d.Logs(), 20))
	}
	log := logFile(podCfg2, restore)
	waitCount(t, log, after+3)
	first := firstCount(log)
	t.Logf("restored from %s: counts on from %d (checkpointed between %d and %d)", ref, first, before, after)
	if first <= before || first > after+1 {
		t.Errorf("counted from %d; want on from the checkpoint, between %d and %d", first, before+1, after+1)
	}
	stdout, _, err := d.Runtime.ExecSync(ctxT(t), rid, []string{"cat", "/tmp/made-here"}, 30*time.Second)
	if err != nil || strings.TrimSpace(string(stdout)) != "kept-counter" {
		t.Errorf("/tmp/made-here = %q (%v); want kept-counter", stdout, err)
	}
}
