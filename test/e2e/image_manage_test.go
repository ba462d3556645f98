package e2e

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

func TestListImages(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	bb, hd := factsOf(t, framework.BusyboxImage), factsOf(t, framework.HTTPDImage)
	if imgs := listImages(t, d, ""); len(imgs) != 0 {
		t.Fatalf("a fresh daemon lists images: %v", ids(imgs))
	}
	pull(t, d, framework.BusyboxImage, bb)
	pull(t, d, framework.HTTPDImage, hd)

	all := listImages(t, d, "")
	if got := ids(all); !slices.Equal(got, sortedIDs(bb, hd)) {
		t.Fatalf("ListImages = %v; want %v", got, sortedIDs(bb, hd))
	}
	for _, img := range all {
		if img.Id == bb.id {
			checkImage(t, img, bb, framework.BusyboxImage)
		} else {
			checkImage(t, img, hd, framework.HTTPDImage)
		}
	}

	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{framework.BusyboxImage, []string{bb.id}},
		{framework.HTTPDImage, []string{hd.id}},
		{hd.id, []string{hd.id}},
		{bb.id, []string{bb.id}},
		{"docker.io/library/nosuchimage:latest", nil},
		{"docker.io/library/busybox:othertag", nil},
	} {
		got := listImages(t, d, tc.filter)
		if !slices.Equal(ids(got), tc.want) {
			t.Errorf("ListImages(filter %q) = %v; want %v", tc.filter, ids(got), tc.want)
		}
	}
}

func sortedIDs(fs ...imageFacts) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		out = append(out, f.id)
	}
	slices.Sort(out)
	return out
}

// TestImageStatusLookups finds an image by each name the CRI lets a client use. A second image is
// present so that a lookup by ID or prefix has to pick the right one.
func TestImageStatusLookups(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	bb, other := factsOf(t, framework.BusyboxImage), factsOf(t, framework.UIDGIDImage)
	pull(t, d, framework.BusyboxImage, bb)
	pull(t, d, framework.UIDGIDImage, other)

	for _, ref := range []string{
		framework.BusyboxImage, "busybox", "busybox:latest", bb.id, bb.hex(), bb.hex()[:12],
	} {
		checkImage(t, mustStatus(t, d, ref, bb), bb, framework.BusyboxImage)
	}
	for _, ref := range []string{other.id, other.hex(), other.hex()[:12]} {
		checkImage(t, mustStatus(t, d, ref, other), other, framework.UIDGIDImage)
	}
}

// TestImageStatusUnknown asks about images the daemon does not have: the answer is no image and
// no error (api.proto), whatever form the reference takes.
func TestImageStatusUnknown(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	zeros := strings.Repeat("0", 64)
	unknown := []string{"docker.io/library/busybox:latest", "busybox", "sha256:" + zeros, zeros, zeros[:12]}
	mustBeAbsent(t, d, unknown...)

	// The same once the store holds something (the ID of another image is not a prefix of 0s).
	bb := factsOf(t, framework.BusyboxImage)
	pull(t, d, framework.BusyboxImage, bb)
	mustBeAbsent(t, d, "docker.io/library/busybox:othertag", "docker.io/library/nosuchimage:latest",
		"docker.io/library/busybox@sha256:"+zeros, "sha256:"+zeros, zeros)
}

func TestImageStatusVerbose(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	hd := factsOf(t, framework.HTTPDImage)
	pull(t, d, framework.HTTPDImage, hd)

	resp, err := d.Images.ImageStatus(ctxT(t), spec(framework.HTTPDImage), true)
	if err != nil || resp.GetImage() == nil {
		t.Fatalf("ImageStatus(verbose) = %v, %v", resp, err)
	}
	checkImage(t, resp.Image, hd, framework.HTTPDImage)
	raw, ok := resp.Info["info"]
	if !ok {
		t.Fatalf("verbose Info has no \"info\" key: keys %v", keys(resp.Info))
	}
	var doc any
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatalf("verbose info is not JSON: %v\n%s", err, raw)
	}
	if _, ok := doc.(map[string]any); !ok {
		t.Fatalf("verbose info is not a JSON object:\n%s", raw)
	}

	// Where the config sits in the document is up to the daemon; look for its contents anywhere.
	var labelFound, createdFound bool
	strs := map[string]bool{}
	walkJSON(doc, func(key string, v any) {
		s, ok := v.(string)
		if !ok {
			return
		}
		strs[s] = true
		if key == framework.TestImageLabel && s == hd.label {
			labelFound = true
		}
		if ts, err := time.Parse(time.RFC3339Nano, s); err == nil && ts.Equal(hd.created) {
			createdFound = true
		}
	})
	if !labelFound {
		t.Errorf("verbose info lacks the label %s=%q:\n%s", framework.TestImageLabel, hd.label, raw)
	}
	if !createdFound {
		t.Errorf("verbose info lacks the creation time %s:\n%s", hd.created.Format(time.RFC3339), raw)
	}
	for i := range hd.layers {
		if !strs[hd.diffIDs[i]] && !strs[hd.layers[i]] {
			t.Errorf("verbose info names neither layer %d's diff ID %s nor its digest %s:\n%s", i, hd.diffIDs[i], hd.layers[i], raw)
		}
	}
}

// walkJSON calls visit with every value in a decoded JSON document and the object key it is
// stored under ("" inside arrays and at the top).
func walkJSON(v any, visit func(key string, v any)) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			visit(k, e)
			walkJSON(e, visit)
		}
	case []any:
		for _, e := range v {
			visit("", e)
			walkJSON(e, visit)
		}
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestImageUser checks the default user the daemon reports from the image's USER: a numeric one
// as Uid, a name as Username, never both (api.proto).
func TestImageUser(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	uidgid, named := factsOf(t, framework.UIDGIDImage), factsOf(t, framework.NamedUserImage)
	pull(t, d, framework.UIDGIDImage, uidgid)
	pull(t, d, framework.NamedUserImage, named)

	listed := map[string]*runtimeapi.Image{}
	for _, img := range listImages(t, d, "") {
		listed[img.Id] = img
	}
	for _, tc := range []struct {
		f        imageFacts
		uid      *int64
		username string
	}{
		{uidgid, new(int64(1234)), ""},
		{named, nil, framework.NamedUser},
	} {
		for how, img := range map[string]*runtimeapi.Image{
			"ImageStatus": mustStatus(t, d, tc.f.name, tc.f),
			"ListImages":  listed[tc.f.id],
		} {
			if img == nil {
				t.Errorf("%s lacks %s", how, tc.f.name)
				continue
			}
			var uid *int64
			if img.Uid != nil {
				uid = &img.Uid.Value
			}
			if deref(uid) != deref(tc.uid) || img.Username != tc.username {
				t.Errorf("%s of %s (USER %q): Uid %v, Username %q; want Uid %v, Username %q",
					how, tc.f.name, tc.f.user, deref(uid), img.Username, deref(tc.uid), tc.username)
			}
		}
	}
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestTwoNamesOneImage pulls the same image under two names: one image, with both tags.
func TestTwoNamesOneImage(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	bb := factsOf(t, framework.BusyboxImage)
	direct := registry.Ref("library/busybox", "latest")
	pull(t, d, framework.BusyboxImage, bb)
	pull(t, d, direct, bb)

	for _, ref := range []string{framework.BusyboxImage, direct, bb.id} {
		checkImage(t, mustStatus(t, d, ref, bb), bb, framework.BusyboxImage, direct)
	}
	all := listImages(t, d, "")
	if !slices.Equal(ids(all), []string{bb.id}) {
		t.Fatalf("ListImages = %v; want the one image %s", ids(all), bb.id)
	}
	checkImage(t, all[0], bb, framework.BusyboxImage, direct)
}

func TestRemoveImage(t *testing.T) {
	t.Parallel()
	bb, other := factsOf(t, framework.BusyboxImage), factsOf(t, framework.UIDGIDImage)
	direct := registry.Ref("library/busybox", "latest")

	t.Run("by tag removes every tag", func(t *testing.T) {
		d := startDaemon(t)
		pull(t, d, framework.BusyboxImage, bb)
		pull(t, d, direct, bb)
		if err := d.Images.RemoveImage(ctxT(t), spec(framework.BusyboxImage)); err != nil {
			t.Fatalf("RemoveImage(%q): %v", framework.BusyboxImage, err)
		}
		mustBeAbsent(t, d, framework.BusyboxImage, direct, bb.id)
		if imgs := listImages(t, d, ""); len(imgs) != 0 {
			t.Errorf("ListImages after the removal = %v; want none", ids(imgs))
		}
	})
	t.Run("by ID", func(t *testing.T) {
		d := startDaemon(t)
		pull(t, d, framework.BusyboxImage, bb)
		pull(t, d, framework.UIDGIDImage, other)
		if err := d.Images.RemoveImage(ctxT(t), spec(bb.id)); err != nil {
			t.Fatalf("RemoveImage(%q): %v", bb.id, err)
		}
		mustBeAbsent(t, d, framework.BusyboxImage, bb.id)
		// The other image shares busybox's layer; it must be intact.
		checkImage(t, mustStatus(t, d, framework.UIDGIDImage, other), other, framework.UIDGIDImage)
		if got := ids(listImages(t, d, "")); !slices.Equal(got, []string{other.id}) {
			t.Errorf("ListImages after the removal = %v; want only %s", got, other.id)
		}
		// And it can be pulled again.
		pull(t, d, framework.BusyboxImage, bb)
	})
	t.Run("unknown image", func(t *testing.T) {
		d := startDaemon(t)
		zeros := "sha256:" + strings.Repeat("0", 64)
		for _, ref := range []string{framework.BusyboxImage, "docker.io/library/nosuchimage:latest", zeros} {
			if err := d.Images.RemoveImage(ctxT(t), spec(ref)); err != nil {
				t.Errorf("RemoveImage(%q) of an absent image = %v; want success", ref, err)
			}
		}
		// Removing twice is no error either.
		pull(t, d, framework.BusyboxImage, bb)
		for range 2 {
			if err := d.Images.RemoveImage(ctxT(t), spec(bb.id)); err != nil {
				t.Errorf("RemoveImage(%q): %v", bb.id, err)
			}
		}
		mustBeAbsent(t, d, bb.id)
	})
	t.Run("concurrent removals all succeed", func(t *testing.T) {
		// critest removes one image from several clients at once; the
		// losers of the race must not fail (they did with "identifier is
		// not an image").
		d := startDaemon(t)
		for round := range 5 {
			pull(t, d, framework.BusyboxImage, bb)
			errs := make(chan error, 4)
			for range cap(errs) {
				go func() { errs <- d.Images.RemoveImage(ctxT(t), spec(bb.id)) }()
			}
			for range cap(errs) {
				if err := <-errs; err != nil {
					t.Errorf("round %d: concurrent RemoveImage: %v", round, err)
				}
			}
			mustBeAbsent(t, d, bb.id)
		}
	})
}

// TestImageFsInfoFollowsPullsAndRemovals compares the image filesystem's UsedBytes around a pull
// and a removal. Busybox's layer holds the busybox binary, so it must add at least that much, and
// removing the only image must give it back.
func TestImageFsInfoFollowsPullsAndRemovals(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	bb := factsOf(t, framework.BusyboxImage)
	fi, err := os.Stat(framework.DefaultBusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	binary := uint64(fi.Size())

	before := usedBytes(t, d)
	pull(t, d, framework.BusyboxImage, bb)
	afterPull := usedBytes(t, d)
	if afterPull < before+binary {
		t.Errorf("UsedBytes went from %d to %d with the pull; want at least the %d bytes of the busybox binary more", before, afterPull, binary)
	}
	if err := d.Images.RemoveImage(ctxT(t), spec(bb.id)); err != nil {
		t.Fatalf("RemoveImage: %v", err)
	}
	afterRemove := usedBytes(t, d)
	if afterRemove+binary > afterPull {
		t.Errorf("UsedBytes went from %d to %d with the removal; want at least %d bytes less", afterPull, afterRemove, binary)
	}
}
