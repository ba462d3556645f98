package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/crashpoint"
	"github.com/cri-runtime/cri-runtime/pkg/safego"
)

// A removal comes in two halves. RemoveContainer stops the container,
// saves its record marked Removing (write-ahead) and forgets it: from then
// on it is neither listed nor found, and its name is free. The slow half —
// "runc delete", then the unmount and deletion of the writable layer in
// containers/storage, about 15 of the 17 ms the call used to take on the
// 2-core development machine — runs in the background.
//
// What needs that half done waits for it, through WaitRemovals, rather
// than finding a layer or a cgroup still there:
//   - the pod's removal (RemovePodContainers): the pod's cgroup and
//     directories go after its containers' runc state and cgroups;
//   - an image's removal (pkg/image calls Removals.WaitLayerRemovals): a writable
//     layer stands on its image's layers, and an image volume holds a
//     mount of its image until the container's removal releases it;
//   - the daemon's shutdown, which lets the removals under way finish.
//
// A new container of the same name needs nothing of the old one gone:
// runc and conmon know containers by ID, and the writable layer's name in
// containers/storage has the ID in it.
//
// A crash in between leaves the record marked Removing, and the next
// start-up finishes the job (undoInterrupted). A background half that
// fails (a busy mount, say) is logged and left pending: the next waiter
// tries it again, from the step that failed.

// removal is one container's background half.
type removal struct {
	c *Container
	// attempt runs the steps not done yet (Service.attemptRemoval).
	attempt func(*removal) error
	// turn holds at most one token: the goroutine running the removal,
	// or a waiter trying a failed one again, holds it; the others wait.
	turn chan struct{}
	// Under turn: the steps done so far, and the last attempt's error.
	step int
	err  error
}

// Removals are the background halves of container removals not yet done.
// The daemon makes one and gives it to the container service, which
// starts them, and to the image service, which waits for them before it
// removes an image (image.Options.LayerRemovals): built before both, it
// needs no setter to connect them.
type Removals struct {
	mu sync.Mutex
	m  map[string]*removal // by container ID
}

// NewRemovals returns an empty set of removals.
func NewRemovals() *Removals { return &Removals{m: map[string]*removal{}} }

// removeLater forgets c, which Remove has stopped and marked Removing,
// and deletes the rest of it in the background.
func (s *Service) removeLater(c *Container) {
	r := &removal{c: c, attempt: s.attemptRemoval, turn: make(chan struct{}, 1)}
	r.turn <- struct{}{} // the goroutine's until its attempt ends
	s.removing.mu.Lock()
	s.removing.m[c.ID] = r
	s.removing.mu.Unlock()
	s.forget(c)
	safego.Go(s.log, "finish container removal", func() {
		defer func() { <-r.turn }()
		if err := s.attemptRemoval(r); err != nil {
			s.log.Warn("finish container removal; the next pod or image removal tries again", "container", c.ID, "err", err)
		}
	})
}

// attemptRemoval runs r's remaining steps; the caller holds r's turn.
// Each step is done once: releasing an image volume twice would release
// another container's.
func (s *Service) attemptRemoval(r *removal) error {
	c := r.c
	steps := []func() error{
		func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := s.runtimeOf(c).Delete(ctx, c.ID); err != nil {
				return fmt.Errorf("remove container %s: %w", c.ID, err)
			}
			crashpoint.Hit("ctr-remove:deleted")
			return nil
		},
		func() error { return s.opts.Images.RemoveWritableLayer(c.ID) },
		func() error { s.unmountImageVolumes(c.Mounts); return nil },
		func() error {
			if err := os.RemoveAll(s.store.Dir(c.ID)); err != nil {
				return fmt.Errorf("remove record of container %s: %w", c.ID, err)
			}
			return nil
		},
	}
	for ; r.step < len(steps); r.step++ {
		if r.err = steps[r.step](); r.err != nil {
			return r.err
		}
	}
	s.removing.mu.Lock()
	delete(s.removing.m, c.ID)
	s.removing.mu.Unlock()
	return nil
}

// WaitRemovals returns once the background halves of the removals of the
// pod's containers (all containers' when podID is "") that began before
// the call are done, trying again those that failed. It fails with the
// error of one still failing, or when ctx ends.
func (s *Service) WaitRemovals(ctx context.Context, podID string) error {
	return s.removing.wait(ctx, func(c *Container) bool { return podID == "" || c.PodID == podID })
}

func (rs *Removals) wait(ctx context.Context, match func(*Container) bool) error {
	rs.mu.Lock()
	var pending []*removal
	for _, r := range rs.m {
		if match(r.c) {
			pending = append(pending, r)
		}
	}
	rs.mu.Unlock()
	var errs []error
	for _, r := range pending {
		select {
		case r.turn <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("wait for the removal of container %s: %w", r.c.ID, ctx.Err())
		}
		err := r.attempt(r)
		<-r.turn
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// syncRemovalBelow is the free space under the root below which Remove
// waits for its own background half: on a nearly full disk the space is
// what the caller is after (the kubelet frees a disk under pressure this
// way), and the disk reserve that the call may have been given (pkg/cri,
// pkg/reserve) is set aside again when the call returns, which would
// leave the background half no room to write the layer store's metadata.
const syncRemovalBelow = 64 << 20

// lowOnSpace tells whether the root's filesystem has less than
// syncRemovalBelow bytes free for us.
func (s *Service) lowOnSpace() bool {
	var st unix.Statfs_t
	if err := unix.Statfs(s.opts.Root, &st); err != nil {
		return false
	}
	return st.Bavail*uint64(st.Bsize) < syncRemovalBelow
}

// WaitLayerRemovals waits for every removal under way, trying again those
// that failed: the image service calls it before it removes an image, the
// daemon before it closes the stores.
func (rs *Removals) WaitLayerRemovals(ctx context.Context) error {
	return rs.wait(ctx, func(*Container) bool { return true })
}
