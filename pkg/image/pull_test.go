package image

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// The kubelet gives up on a pull (its deadline), the download is stopped,
// and the kubelet retries while the stopped download is still winding
// down. The retry must start a download of its own, not join the stopped
// one and fail with Canceled.
func TestRetryDoesNotJoinCancelledPull(t *testing.T) {
	s := openTestService(t)
	var downloads atomic.Int32
	windDown := make(chan struct{}) // the stopped download's cleanup
	want := &Image{ID: "sha256:" + "ab12"}
	s.download = func(ctx context.Context, name string, auth *Auth) (*Image, error) {
		if downloads.Add(1) == 1 {
			<-ctx.Done()
			<-windDown
			return nil, ctx.Err()
		}
		return want, nil
	}
	defer close(windDown)

	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := s.Pull(ctx, "docker.io/library/busybox:latest", nil); first <- err }()
	for downloads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("the abandoned pull: %v; want Canceled", err)
	}

	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	img, err := s.Pull(rctx, "docker.io/library/busybox:latest", nil)
	if err != nil || img != want {
		t.Fatalf("the retry = %v, %v; want a new download's image", img, err)
	}
	if n := downloads.Load(); n != 2 {
		t.Fatalf("%d downloads; want 2", n)
	}
}

// A panicking download fails its pull instead of hanging its callers.
func TestPanickingPullFails(t *testing.T) {
	s := openTestService(t)
	s.download = func(context.Context, string, *Auth) (*Image, error) { panic("boom") }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Pull(ctx, "docker.io/library/busybox:latest", nil); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Pull with a panicking download: %v; want its error at once", err)
	}
}
