package container

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/image"
)

func (f *fakeImages) hasLayer(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.layers[id]
}

// TestRemoveLeavesTheLayerToTheBackground: Remove returns while the
// writable layer's deletion is held; the container is gone from Get and
// List at once and its name is free, and WaitRemovals — the barrier the
// pod's and the image's removals go through — returns only once the layer
// and the record are gone.
func TestRemoveLeavesTheLayerToTheBackground(t *testing.T) {
	f := newFixture(t)
	s := f.service(t)
	ctx := context.Background()
	c, err := s.Create(ctx, request("a"))
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	f.images.removeGate = gate

	if err := s.Remove(ctx, c.ID); err != nil { // returns with the layer's deletion held
		t.Fatal(err)
	}
	if _, err := s.Get(c.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get after Remove = %v; want NotFound", err)
	}
	if l := s.List(Filter{}); len(l) != 0 {
		t.Errorf("List after Remove: %d containers; want none", len(l))
	}
	again, err := s.Create(ctx, request("a"))
	if err != nil {
		t.Fatalf("Create with the name of a container being removed: %v", err)
	}

	// The barrier holds while the removal runs: a caller whose context
	// ends first is told so, instead of going on with the layer there.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.WaitRemovals(cancelled, "pod0000000000000"); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitRemovals with the layer's deletion held = %v; want context.Canceled", err)
	}
	if err := s.WaitRemovals(cancelled, "another-pod"); err != nil {
		t.Errorf("WaitRemovals of a pod with no removal under way = %v; want nil", err)
	}

	close(gate)
	if err := s.WaitRemovals(ctx, "pod0000000000000"); err != nil {
		t.Fatal(err)
	}
	if f.images.hasLayer(c.ID) {
		t.Errorf("writable layer of %s left after WaitRemovals", c.ID)
	}
	if _, err := os.Stat(filepath.Dir(s.recordPath(c.ID))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("record of %s after WaitRemovals: %v; want it gone", c.ID, err)
	}
	if !f.images.hasLayer(again.ID) {
		t.Errorf("the new container %s lost its layer", again.ID)
	}
	// RemovePodContainers is Remove and the barrier.
	if err := s.RemovePodContainers(ctx, "pod0000000000000"); err != nil {
		t.Fatal(err)
	}
	if f.images.hasLayer(again.ID) {
		t.Errorf("writable layer of %s left after RemovePodContainers", again.ID)
	}
}

// TestFailedBackgroundRemovalIsRetried: a layer deletion that fails in the
// background is tried again by the next waiter, from the step that failed
// (an image volume is released once), and a restart finishes one that
// never succeeded.
func TestFailedBackgroundRemovalIsRetried(t *testing.T) {
	f := newFixture(t)
	s := f.service(t)
	ctx := context.Background()
	img := image.ID(strings.Repeat("ab", 32))
	withVolume := func(name string) CreateRequest {
		r := request(name)
		r.ImageVolumes = []ImageVolume{{ContainerPath: "/vol", Image: "busybox"}}
		return r
	}
	a, err := s.Create(ctx, withVolume("a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Create(ctx, withVolume("b"))
	if err != nil {
		t.Fatal(err)
	}
	busy := errors.New("device or resource busy")
	f.images.mu.Lock()
	f.images.removeErr = busy
	f.images.mu.Unlock()

	if err := s.Remove(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitRemovals(ctx, ""); !errors.Is(err, busy) {
		t.Fatalf("WaitRemovals while the layer cannot be deleted = %v; want %v", err, busy)
	}
	if !f.images.hasLayer(a.ID) || f.images.mounts[img] != 2 {
		t.Fatalf("after a failed removal: layer %v, image mounts %d; want the layer and both mounts", f.images.hasLayer(a.ID), f.images.mounts[img])
	}
	f.images.mu.Lock()
	f.images.removeErr = nil
	f.images.mu.Unlock()
	if err := s.WaitRemovals(ctx, ""); err != nil {
		t.Fatalf("WaitRemovals once the layer can be deleted = %v; want nil", err)
	}
	if f.images.hasLayer(a.ID) || f.images.mounts[img] != 1 {
		t.Fatalf("after the retry: layer %v, image mounts %d; want no layer and b's mount", f.images.hasLayer(a.ID), f.images.mounts[img])
	}
	if err := s.WaitRemovals(ctx, ""); err != nil {
		t.Fatalf("WaitRemovals with nothing under way = %v", err)
	}
	if f.images.mounts[img] != 1 {
		t.Fatalf("image mounts %d after another WaitRemovals; want 1 (released once)", f.images.mounts[img])
	}

	// Never finished before the daemon stopped: the start-up finishes it.
	f.images.mu.Lock()
	f.images.removeErr = busy
	f.images.mu.Unlock()
	if err := s.Remove(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitRemovals(ctx, ""); !errors.Is(err, busy) {
		t.Fatalf("WaitRemovals = %v; want %v", err, busy)
	}
	f.images.mu.Lock()
	f.images.removeErr = nil
	f.images.mu.Unlock()
	s2 := f.service(t)
	if _, err := s2.Get(b.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get after the restart = %v; want NotFound", err)
	}
	if f.images.hasLayer(b.ID) || f.images.mounts[img] != 0 {
		t.Errorf("after the restart: layer %v, image mounts %d; want neither", f.images.hasLayer(b.ID), f.images.mounts[img])
	}
	if _, err := os.Stat(filepath.Dir(s2.recordPath(b.ID))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("record of %s after the restart: %v; want it gone", b.ID, err)
	}
}
