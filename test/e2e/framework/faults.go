package framework

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
)

// Faults the registry can be told to inject into blob downloads, so that tests can pull from a
// registry that breaks in the middle of a transfer, or hold transfers back until every client of
// interest has asked for them.

// BreakBlob makes every GET of the blob with this digest ("sha256:...") fail part-way through the
// body, until RepairBlob: the registry sends the real status and headers (including the full
// Content-Length) and the first half of the bytes it would have sent, then drops the connection.
// Ranged GETs are broken the same way, so a client that resumes with a Range request fails again
// instead of quietly completing the download. A broken GET still counts in BlobFetches (its 2xx
// status was sent); AbortedFetches counts the connections dropped.
func (r *Registry) BreakBlob(digest string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.broken[digest] = true
}

// RepairBlob undoes BreakBlob: later GETs of the blob are served whole.
func (r *Registry) RepairBlob(digest string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.broken, digest)
}

// AbortedFetches returns how many GETs of the blob with this digest were cut short by BreakBlob.
func (r *Registry) AbortedFetches(digest string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.aborted[digest]
}

// HoldBlobs makes blob GETs (of any digest) wait, before anything of the response is sent, until
// ReleaseBlobs or Close. Other requests (the /v2/ ping, manifests, HEADs, uploads) are not held.
// Calling it while blobs are already held does nothing.
func (r *Registry) HoldBlobs() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gate == nil {
		r.gate = make(chan struct{})
	}
}

// ReleaseBlobs lets the held blob GETs, and all later ones, proceed. It is safe to call at any
// time, more than once.
func (r *Registry) ReleaseBlobs() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gate != nil {
		close(r.gate)
		r.gate = nil
	}
}

// HeldBlobs returns how many blob GETs are waiting for ReleaseBlobs right now.
func (r *Registry) HeldBlobs() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.held
}

// WaitHeldBlobs blocks until at least n blob GETs are waiting for ReleaseBlobs, or ctx ends.
func (r *Registry) WaitHeldBlobs(ctx context.Context, n int) error {
	for {
		r.mu.Lock()
		held, changed := r.held, r.heldChanged
		r.mu.Unlock()
		if held >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// setHeld changes the number of held GETs and wakes WaitHeldBlobs. r.mu must be held.
func (r *Registry) setHeld(delta int) {
	r.held += delta
	close(r.heldChanged)
	r.heldChanged = make(chan struct{})
}

// waitForGate blocks a blob GET while blobs are held. It reports false if the client went away
// (or the registry was closed) first.
func (r *Registry) waitForGate(req *http.Request) bool {
	r.mu.Lock()
	gate := r.gate
	if gate == nil {
		r.mu.Unlock()
		return true
	}
	r.setHeld(1)
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.setHeld(-1)
		r.mu.Unlock()
	}()
	select {
	case <-gate:
		return true
	case <-req.Context().Done():
		return false
	}
}

func (r *Registry) isBroken(digest string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.broken[digest]
}

// serveBroken serves a blob GET the way BreakBlob describes. The registry's answer is rendered
// into memory first, so that the fault is injected here rather than inside the registry's
// handler.
func (r *Registry) serveBroken(w http.ResponseWriter, req *http.Request, next http.Handler, digest string) {
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, req)
	body := rec.Body.Bytes()
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	if rec.Code < 200 || rec.Code >= 300 || len(body) < 2 {
		// Nothing to cut in half (an error, or an empty body): answer as the registry did.
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
		return
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body[:len(body)/2])
	// Make sure the partial body is on the wire before the connection goes.
	_ = http.NewResponseController(w).Flush()
	r.mu.Lock()
	r.aborted[digest]++
	r.mu.Unlock()
	// net/http closes the connection without a response trailer or a log line for this value.
	panic(http.ErrAbortHandler)
}

// ClosedAddr returns a "127.0.0.1:PORT" where nothing listens: a port the kernel just handed out
// and that was closed again at once, so connecting to it is refused (unless another process
// happens to take the same port in the meantime, which the kernel makes unlikely).
func ClosedAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a closed port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("find a closed port: %w", err)
	}
	return addr, nil
}
