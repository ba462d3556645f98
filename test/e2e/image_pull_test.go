package e2e

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// TestPullImageReferenceForms pulls busybox by each form of reference a pod spec may use, each on
// a fresh daemon, and checks that the image is then known under that same reference: the kubelet
// asks ImageStatus with the pod's image string before every container start.
func TestPullImageReferenceForms(t *testing.T) {
	t.Parallel()
	bb := factsOf(t, framework.BusyboxImage)
	const repo = "docker.io/library/busybox"
	for _, tc := range []struct {
		name string
		ref  string
		// also are other references the image must be found by afterwards.
		also []string
		// tags the image must carry afterwards.
		tags []string
	}{
		{"tag", framework.BusyboxImage, nil, []string{framework.BusyboxImage}},
		{"digest", repo + "@" + bb.digest, []string{bb.id}, nil},
		{"tag and digest", repo + ":latest@" + bb.digest, []string{repo + "@" + bb.digest}, nil},
		{"short name", "busybox", []string{framework.BusyboxImage, "busybox:latest"}, []string{framework.BusyboxImage}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startDaemon(t)
			pull(t, d, tc.ref, bb)
			for _, ref := range append([]string{tc.ref}, tc.also...) {
				img := mustStatus(t, d, ref, bb)
				checkImage(t, img, bb, tc.tags...)
				if want := repo + "@" + bb.digest; !slices.Contains(img.RepoDigests, want) {
					t.Errorf("ImageStatus(%q).RepoDigests = %v; want %q among them", ref, img.RepoDigests, want)
				}
			}
			// Pulling what is already there answers the same.
			pull(t, d, tc.ref, bb)
			if got := ids(listImages(t, d, "")); !slices.Equal(got, []string{bb.id}) {
				t.Errorf("ListImages = %v; want only %s", got, bb.id)
			}
		})
	}
}

// TestPullImageErrors checks the gRPC code and message of each way a pull can fail before any
// data arrives, and that failed pulls leave no image behind.
func TestPullImageErrors(t *testing.T) {
	t.Parallel()
	dead, err := framework.ClosedAddr()
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemonFor(t, registry, dead)
	zeros := "sha256:" + strings.Repeat("0", 64)
	for _, tc := range []struct {
		ref     string
		code    codes.Code
		mention string // the error message must contain this
	}{
		{"UPPER/Case::bad", codes.InvalidArgument, ""},
		{"busybox@sha256:123", codes.InvalidArgument, ""},
		{"docker.io/library/busybox:nosuchtag", codes.NotFound, "docker.io/library/busybox:nosuchtag"},
		{"docker.io/library/nosuchimage:latest", codes.NotFound, "docker.io/library/nosuchimage:latest"},
		{"docker.io/library/busybox@" + zeros, codes.NotFound, "docker.io/library/busybox@" + zeros},
		{dead + "/x:1", codes.Unavailable, dead},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			id, err := d.Images.PullImage(ctxT(t), spec(tc.ref), nil, nil)
			if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.mention) {
				t.Fatalf("PullImage(%q) = %q, %v; want %v naming %q", tc.ref, id, err, tc.code, tc.mention)
			}
		})
	}
	if imgs := listImages(t, d, ""); len(imgs) != 0 {
		t.Errorf("failed pulls left images behind: %v", ids(imgs))
	}
}

// TestPullImageWithCredentials pulls from a registry that demands basic authentication. The image
// is named by the registry's own address: containers/image withholds credentials from a registry
// other than the one named.
func TestPullImageWithCredentials(t *testing.T) {
	t.Parallel()
	const user, password, wrong = "e2e-puller", "S3cret-e2e-Passw0rd", "Wr0ng-e2e-Passw0rd"
	reg := startRegistry(t, framework.RegistryOptions{Username: user, Password: password}, framework.BusyboxImage)
	d := startDaemonFor(t, reg)
	bb := factsOf(t, framework.BusyboxImage)
	ref := reg.Ref("library/busybox", "latest")

	for _, tc := range []struct {
		name string
		auth *runtimeapi.AuthConfig
	}{
		{"no credentials", nil},
		{"wrong password", &runtimeapi.AuthConfig{Username: user, Password: wrong}},
		{"unknown user", &runtimeapi.AuthConfig{Username: "nobody", Password: password}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := d.Images.PullImage(ctxT(t), spec(ref), tc.auth, nil)
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("PullImage(%q) = %q, %v; want Unauthenticated", ref, id, err)
			}
			if strings.Contains(err.Error(), password) || strings.Contains(err.Error(), wrong) {
				t.Errorf("the error reveals a password: %v", err)
			}
		})
	}
	if imgs := listImages(t, d, ""); len(imgs) != 0 {
		t.Fatalf("rejected pulls left images behind: %v", ids(imgs))
	}

	id, err := d.Images.PullImage(ctxT(t), spec(ref), &runtimeapi.AuthConfig{Username: user, Password: password}, nil)
	if err != nil || id != bb.id {
		t.Fatalf("PullImage(%q) with the right credentials = %q, %v; want %s", ref, id, err, bb.id)
	}
	checkImage(t, mustStatus(t, d, ref, bb), bb, ref)

	if logs := d.Logs(); strings.Contains(logs, password) || strings.Contains(logs, wrong) {
		t.Errorf("the daemon log reveals a password")
	}
}

// TestConcurrentPullsShareOnePull pulls one image from eight goroutines at once on a registry of
// its own, whose counts start at zero: every blob must be downloaded exactly once. The registry
// holds blob downloads until all eight calls are under way and one download has begun, so that
// the pulls overlap however the goroutines are scheduled.
func TestConcurrentPullsShareOnePull(t *testing.T) {
	t.Parallel()
	raceBuild(t)
	reg := startRegistry(t, framework.RegistryOptions{}, framework.BusyboxImage)
	d := startDaemonFor(t, reg)
	bb := factsOf(t, framework.BusyboxImage)
	ctx := ctxT(t)
	reg.ResetCounts()
	reg.HoldBlobs()

	const n = 8
	got := make([]string, n)
	errs := make([]error, n)
	var pulls, calling sync.WaitGroup
	calling.Add(n)
	start := make(chan struct{})
	for i := range n {
		pulls.Go(func() {
			<-start
			calling.Done()
			got[i], errs[i] = d.Images.PullImage(ctx, spec(framework.BusyboxImage), nil, nil)
		})
	}
	// Let the pulls finish before the daemon and the registry are stopped, however the test ends.
	t.Cleanup(func() {
		reg.ReleaseBlobs()
		pulls.Wait()
	})
	close(start)
	calling.Wait()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := reg.WaitHeldBlobs(wctx, 1); err != nil {
		t.Fatalf("no blob download began: %v", err)
	}
	reg.ReleaseBlobs()
	pulls.Wait()

	for i := range n {
		if errs[i] != nil || got[i] != bb.id {
			t.Errorf("pull %d = %q, %v; want %s", i, got[i], errs[i], bb.id)
		}
	}
	for _, blob := range append([]string{bb.config}, bb.layers...) {
		if c := reg.BlobFetches(blob); c != 1 {
			t.Errorf("blob %s was downloaded %d times by %d concurrent pulls; want once", blob, c, n)
		}
	}
	if imgs := listImages(t, d, ""); !slices.Equal(ids(imgs), []string{bb.id}) {
		t.Errorf("ListImages = %v; want only %s", ids(imgs), bb.id)
	}
	checkImage(t, mustStatus(t, d, framework.BusyboxImage, bb), bb, framework.BusyboxImage)
}

// TestInterruptedPullLeavesNothing cuts the connection in the middle of the image's largest layer,
// on every attempt: the pull fails, and leaves neither an image nor bytes on the image
// filesystem. Once the registry serves the blob whole again, the same pull succeeds.
func TestInterruptedPullLeavesNothing(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, framework.RegistryOptions{}, framework.BusyboxImage)
	d := startDaemonFor(t, reg)
	bb := factsOf(t, framework.BusyboxImage)
	ctx := ctxT(t)

	// A first pull and removal, so that whatever the store creates on first use and keeps is
	// already counted in the baseline.
	pull(t, d, framework.BusyboxImage, bb)
	if err := d.Images.RemoveImage(ctx, spec(bb.id)); err != nil {
		t.Fatalf("RemoveImage: %v", err)
	}
	mustBeAbsent(t, d, framework.BusyboxImage)
	before, beforeFiles := usedBytes(t, d), diskUsage(d.Root)

	layer := bb.largestLayer()
	reg.BreakBlob(layer)
	id, err := d.Images.PullImage(ctx, spec(framework.BusyboxImage), nil, nil)
	if err == nil {
		t.Fatalf("PullImage succeeded (%s) although every download of layer %s was cut short", id, layer)
	}
	if reg.AbortedFetches(layer) == 0 {
		t.Fatalf("PullImage failed (%v) without downloading layer %s: the interruption was not exercised", err, layer)
	}
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "registry docker.io") {
		t.Fatalf("interrupted pull = %v; want Unavailable naming the registry", err)
	}

	mustBeAbsent(t, d, framework.BusyboxImage, bb.id)
	if imgs := listImages(t, d, ""); len(imgs) != 0 {
		t.Errorf("the interrupted pull left images: %v", ids(imgs))
	}
	afterFiles := diskUsage(d.Root)
	if after := usedBytes(t, d); after != before {
		t.Errorf("image filesystem UsedBytes = %d after the interrupted pull; want %d as before it. Changes under %s:\n%s",
			after, before, d.Root, usageDiff(beforeFiles, afterFiles))
	}
	// ImageFsInfo measures only the image store; a partial download kept elsewhere under the
	// daemon's root (a temporary directory, say) would escape it. Whatever the layout, the failed
	// pull must not have added a file there.
	for p := range afterFiles {
		if _, ok := beforeFiles[p]; !ok {
			t.Errorf("the interrupted pull left %s%s behind (%d bytes)", d.Root, p, afterFiles[p])
		}
	}

	reg.RepairBlob(layer)
	pull(t, d, framework.BusyboxImage, bb)
	checkImage(t, mustStatus(t, d, framework.BusyboxImage, bb), bb, framework.BusyboxImage)
}
