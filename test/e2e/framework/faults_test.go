package framework

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// busyboxLayerBlob pushes the busybox image to a fresh registry and returns the registry, the
// URL of its (only, and largest) layer blob, that layer's digest and its compressed bytes.
func busyboxLayerBlob(t *testing.T) (*Registry, string, string, []byte) {
	t.Helper()
	r := startTestRegistry(t, RegistryOptions{})
	images := mustGet(BuildTestImages(DefaultBusyboxPath))(t)
	ti := images[0]
	if ti.Name != BusyboxImage {
		t.Fatalf("first test image is %s", ti.Name)
	}
	mustGet(r.Push(ti.Repo, ti.Tag, ti.Image))(t)
	layers := mustGet(ti.Image.Layers())(t)
	d := mustGet(layers[0].Digest())(t)
	rc := mustGet(layers[0].Compressed())(t)
	defer rc.Close()
	blob := mustGet(io.ReadAll(rc))(t)
	return r, "http://" + r.Addr() + "/v2/" + ti.Repo + "/blobs/" + d.String(), d.String(), blob
}

// get fetches url with optional Range header and returns the response and what could be read
// of its body before the read failed.
func get(t *testing.T, url, rng string) (*http.Response, []byte, error) {
	t.Helper()
	req := mustGet(http.NewRequest(http.MethodGet, url, nil))(t)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	// A fresh transport per request, so a dropped connection is not mistaken for a reused one.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func TestBreakBlob(t *testing.T) {
	r, url, digest, blob := busyboxLayerBlob(t)
	if len(blob) < 512*1024 {
		t.Fatalf("busybox layer is only %d bytes; the fault is meant to hit a large blob", len(blob))
	}
	r.BreakBlob(digest)

	resp, body, err := get(t, url, "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Length") != strconv.Itoa(len(blob)) {
		t.Fatalf("broken GET: status %d, Content-Length %q; want 200 and %d", resp.StatusCode, resp.Header.Get("Content-Length"), len(blob))
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(body) == 0 || len(body) >= len(blob) || !bytes.Equal(body, blob[:len(body)]) {
		t.Fatalf("broken GET: read %d of %d bytes, err %v; want a true prefix cut short", len(body), len(blob), err)
	}
	if got := r.AbortedFetches(digest); got != 1 {
		t.Errorf("AbortedFetches = %d; want 1", got)
	}

	// Resuming with a Range request fails the same way. (The registry understands only ranges
	// with both ends.)
	resp, body, err = get(t, url, "bytes="+strconv.Itoa(len(body))+"-"+strconv.Itoa(len(blob)-1))
	if resp.StatusCode != http.StatusPartialContent || !errors.Is(err, io.ErrUnexpectedEOF) || len(body) == 0 {
		t.Fatalf("broken ranged GET: status %d, read %d bytes, err %v", resp.StatusCode, len(body), err)
	}
	if got, fetches := r.AbortedFetches(digest), r.BlobFetches(digest); got != 2 || fetches != 2 {
		t.Errorf("after the ranged GET: AbortedFetches = %d, BlobFetches = %d; want 2 and 2", got, fetches)
	}

	// Other blobs are not affected, and HEAD still works.
	head := mustGet(http.Head(url))(t)
	head.Body.Close()
	if head.StatusCode != http.StatusOK {
		t.Errorf("HEAD of a broken blob: %d", head.StatusCode)
	}

	r.RepairBlob(digest)
	resp, body, err = get(t, url, "")
	sum := sha256.Sum256(body)
	if err != nil || resp.StatusCode != http.StatusOK || "sha256:"+hex.EncodeToString(sum[:]) != digest {
		t.Fatalf("after RepairBlob: status %d, %d bytes, err %v", resp.StatusCode, len(body), err)
	}
	if got := r.AbortedFetches(digest); got != 2 {
		t.Errorf("AbortedFetches after a whole fetch = %d; want still 2", got)
	}
	r.ResetCounts()
	if r.AbortedFetches(digest) != 0 {
		t.Error("ResetCounts kept the aborted fetches")
	}
}

func TestHoldBlobs(t *testing.T) {
	r, url, digest, blob := busyboxLayerBlob(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	r.HoldBlobs()
	r.HoldBlobs() // idempotent
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 2)
	for range 2 {
		go func() {
			resp, err := http.Get(url)
			if err != nil {
				done <- result{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			done <- result{len(b), err}
		}()
	}
	if err := r.WaitHeldBlobs(ctx, 2); err != nil {
		t.Fatalf("WaitHeldBlobs: %v (held %d)", err, r.HeldBlobs())
	}
	if got := r.BlobFetches(digest); got != 0 {
		t.Fatalf("BlobFetches while held = %d; want 0", got)
	}
	// Other requests are not held.
	resp := mustGet(http.Get("http://" + r.Addr() + "/v2/"))(t)
	resp.Body.Close()
	head := mustGet(http.Head(url))(t)
	head.Body.Close()
	if resp.StatusCode != http.StatusOK || head.StatusCode != http.StatusOK {
		t.Fatalf("while held: /v2/ %d, HEAD %d", resp.StatusCode, head.StatusCode)
	}

	r.ReleaseBlobs()
	for range 2 {
		res := <-done
		if res.err != nil || res.n != len(blob) {
			t.Fatalf("released GET: %d bytes, %v", res.n, res.err)
		}
	}
	if got, held := r.BlobFetches(digest), r.HeldBlobs(); got != 2 || held != 0 {
		t.Fatalf("after release: BlobFetches %d, HeldBlobs %d; want 2 and 0", got, held)
	}
	r.ReleaseBlobs() // idempotent

	// Close lets go of held GETs rather than hanging.
	r.HoldBlobs()
	errc := make(chan error, 1)
	go func() {
		resp, err := http.Get(url)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		errc <- err
	}()
	if err := r.WaitHeldBlobs(ctx, 1); err != nil {
		t.Fatal(err)
	}
	r.Close()
	select {
	case <-errc:
	case <-ctx.Done():
		t.Fatal("a held GET survived Close")
	}
}

func TestWaitHeldBlobsGivesUp(t *testing.T) {
	r := startTestRegistry(t, RegistryOptions{})
	r.HoldBlobs()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.WaitHeldBlobs(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitHeldBlobs on a cancelled context = %v", err)
	}
	if err := r.WaitHeldBlobs(ctx, 0); err != nil {
		t.Fatalf("WaitHeldBlobs(0) = %v", err)
	}
}

func TestClosedAddr(t *testing.T) {
	addr := mustGet(ClosedAddr())(t)
	if host, _, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" {
		t.Fatalf("ClosedAddr = %q", addr)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("something listens on %s", addr)
	}
}

func TestWriteRegistriesConfExtraInsecure(t *testing.T) {
	r := startTestRegistry(t, RegistryOptions{})
	path := filepath.Join(t.TempDir(), "registries.conf")
	extra := []string{"127.0.0.1:1", "127.0.0.1:2"}
	if err := r.WriteRegistriesConf(path, extra...); err != nil {
		t.Fatal(err)
	}
	var conf registriesConf
	mustGet(toml.DecodeFile(path, &conf))(t)
	found := map[string]bool{}
	for _, reg := range conf.Registries {
		if reg.Location != r.Addr() {
			if reg.Prefix != "" || !reg.Insecure {
				t.Errorf("extra entry %+v: want an insecure entry without a prefix", reg)
			}
			found[reg.Location] = true
		}
	}
	for _, e := range extra {
		if !found[e] {
			t.Errorf("no [[registry]] for %s in %+v", e, conf.Registries)
		}
	}
	if len(found) != len(extra) {
		t.Errorf("unexpected entries: %+v", conf.Registries)
	}
}
