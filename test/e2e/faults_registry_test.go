package e2e

// A registry behind a bad network: pulls through a proxy that relays
// slowly, stalls or drops connections, with other pulls, creates, cancels
// and retries going on. Nothing may wait on an unrelated operation, a
// cancelled pull's retry succeeds once the network recovers, and a dropped
// connection gives a clear code and leaves nothing behind.

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// bigImage is busybox with a layer of its own of about 1 MiB compressed
// (random text), so that its download takes a while through a slow proxy.
func bigImage(t *testing.T) v1.Image {
	t.Helper()
	l := hostileLayer(t, []hostileEntry{hFile("big", randomHex(1<<20))})
	img, err := mutate.AppendLayers(testImages[framework.BusyboxImage].Image, l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// pullResult is the outcome of a pull run in the background.
type pullResult struct {
	id  string
	err error
}

func pullAsync(d *framework.Daemon, ref string, timeout time.Duration) <-chan pullResult {
	done := make(chan pullResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		id, err := d.Images.PullImage(ctx, spec(ref), nil, nil)
		done <- pullResult{id, err}
	}()
	return done
}

func TestThrottledRegistry(t *testing.T) {
	t.Parallel()
	regA := startRegistry(t, framework.RegistryOptions{}, framework.BusyboxImage)
	for _, name := range []string{"stalled", "cancelled", "dropped"} {
		if _, err := regA.Push("library/"+name, "latest", bigImage(t)); err != nil {
			t.Fatal(err)
		}
	}
	proxy, err := framework.StartFaultProxy(regA.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	regB := startRegistry(t, framework.RegistryOptions{})
	other, _ := busyboxPlus(t, "other")
	if _, err := regB.Push("library/other", "latest", other); err != nil {
		t.Fatal(err)
	}
	d := startDaemonFor(t, regA, proxy.Addr(), regB.Addr())
	cleanupPods(t, d)
	pull(t, d, framework.BusyboxImage, factsOf(t, framework.BusyboxImage))
	pod, podCfg := ctrPod(t, d, "throttled")
	via := func(name string) string { return proxy.Addr() + "/library/" + name + ":latest" }
	layers := filepath.Join(d.Root, "storage", "overlay")

	// midTransfer slows the proxy down and waits until a pull through it
	// is well into its big layer.
	midTransfer := func(t *testing.T, done <-chan pullResult) {
		t.Helper()
		base := proxy.Relayed()
		if !eventually(time.Minute, func() bool { return proxy.Relayed() > base+256<<10 || len(done) > 0 }) || len(done) > 0 {
			t.Fatal("the pull through the proxy never got into its layer")
		}
	}
	// prompt is a deadline for calls that wait for nothing: they take well
	// under a second; a call that waited on the stalled pull would hit it.
	prompt := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		return ctx
	}

	t.Run("unrelated work does not wait on a stalled pull", func(t *testing.T) {
		proxy.Slow(512 << 10)
		stalled := pullAsync(d, via("stalled"), 3*time.Minute)
		midTransfer(t, stalled)
		proxy.Stall()
		t.Cleanup(proxy.Heal)

		if _, err := d.Images.PullImage(prompt(t), spec(regB.Ref("library/other", "latest")), nil, nil); err != nil {
			t.Errorf("PullImage of another image from another registry while a pull stalls: %v", err)
		}
		id, err := d.Runtime.CreateContainer(prompt(t), pod, shCfg("c", "true"), podCfg)
		if err != nil {
			t.Errorf("CreateContainer of a present image while a pull stalls: %v", err)
		} else if err := d.Runtime.RemoveContainer(prompt(t), id); err != nil {
			t.Errorf("RemoveContainer while a pull stalls: %v", err)
		}
		if _, err := d.Images.ListImages(prompt(t), nil); err != nil {
			t.Errorf("ListImages while a pull stalls: %v", err)
		}
		if _, err := d.Images.ImageFsInfo(prompt(t)); err != nil {
			t.Errorf("ImageFsInfo while a pull stalls: %v", err)
		}
		// A second client of the same pull gives up: the pull goes on for
		// the first.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = d.Images.PullImage(ctx, spec(via("stalled")), nil, nil)
		cancel()
		if c := status.Code(err); c != codes.DeadlineExceeded && c != codes.Canceled {
			t.Errorf("a second PullImage of the stalled image, given up: %v; want DeadlineExceeded", err)
		}
		select {
		case r := <-stalled:
			t.Fatalf("the stalled pull ended while stalled: %v, %v", r.id, r.err)
		default: // the proof that nothing above waited on it
		}
		proxy.Heal()
		if r := <-stalled; r.err != nil {
			t.Errorf("the stalled pull, once the proxy recovered: %v", r.err)
		}
	})

	t.Run("a cancelled pull's retry succeeds once the proxy recovers", func(t *testing.T) {
		proxy.Slow(512 << 10)
		given := pullAsync(d, via("cancelled"), 3*time.Second)
		midTransfer(t, given)
		proxy.Stall()
		t.Cleanup(proxy.Heal)
		if r := <-given; status.Code(r.err) != codes.DeadlineExceeded && status.Code(r.err) != codes.Canceled {
			t.Fatalf("a pull whose client gave up: %v, %v; want DeadlineExceeded", r.id, r.err)
		}
		// The kubelet retries at once, before the network recovers.
		retry := pullAsync(d, via("cancelled"), 3*time.Minute)
		time.Sleep(500 * time.Millisecond) // the retry is in flight
		proxy.Heal()
		if r := <-retry; r.err != nil {
			t.Errorf("the retry of a cancelled pull, once the proxy recovered: %v", r.err)
		}
	})

	t.Run("dropped connections give a clear code and leave nothing", func(t *testing.T) {
		before := dirEntries(t, layers)
		proxy.Slow(512 << 10)
		dropped := pullAsync(d, via("dropped"), 3*time.Minute)
		midTransfer(t, dropped)
		proxy.Drop()
		t.Cleanup(proxy.Heal)
		r := <-dropped
		if status.Code(r.err) != codes.Unavailable {
			t.Errorf("a pull whose connections were dropped: %v, %v; want Unavailable", r.id, r.err)
		}
		mustBeAbsent(t, d, via("dropped"))
		if !eventually(10*time.Second, func() bool { return slices.Equal(dirEntries(t, layers), before) }) {
			t.Errorf("layers after the dropped pull: %v; before it %v", dirEntries(t, layers), before)
		}
		proxy.Heal()
		if _, err := d.Images.PullImage(prompt(t), spec(via("dropped")), nil, nil); err != nil {
			t.Errorf("PullImage once the proxy recovered: %v", err)
		}
	})
}
