package framework

import (
	"crypto/subtle"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// registryRealm is the realm announced in the Basic authentication challenge.
const registryRealm = "cri-runtime-e2e"

// Registry is an OCI registry served in-process on 127.0.0.1 for tests.
type Registry struct {
	opts     RegistryOptions
	listener net.Listener
	server   *http.Server
	served   chan struct{} // closed once Serve has returned

	closeOnce sync.Once

	mu       sync.Mutex
	blobGets map[string]int
	// Faults (see faults.go): blobs whose GETs break mid-body, how many GETs were cut short,
	// and the gate holding blob GETs (nil when open) with the number waiting at it.
	broken      map[string]bool
	aborted     map[string]int
	gate        chan struct{}
	held        int
	heldChanged chan struct{} // closed and replaced whenever held changes
}

// RegistryOptions configures StartRegistry.
type RegistryOptions struct {
	// Username/Password, when set, make every /v2/ request require HTTP basic auth (401 with a
	// WWW-Authenticate: Basic realm=... header otherwise). Used later to test pull credentials.
	Username, Password string
}

// requiresAuth reports whether the options ask for basic authentication.
func (o RegistryOptions) requiresAuth() bool {
	return o.Username != "" || o.Password != ""
}

// StartRegistry starts an in-memory registry speaking plain HTTP on a free port of 127.0.0.1.
// The caller must Close it.
func StartRegistry(opts RegistryOptions) (*Registry, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("test registry: listen: %w", err)
	}
	quiet := log.New(io.Discard, "", 0)
	r := &Registry{
		opts:     opts,
		listener: l,
		served:   make(chan struct{}),
		blobGets: map[string]int{},

		broken:      map[string]bool{},
		aborted:     map[string]int{},
		heldChanged: make(chan struct{}),
	}
	r.server = &http.Server{
		Handler:  r.wrap(registry.New(registry.Logger(quiet))),
		ErrorLog: quiet,
	}
	go func() {
		defer close(r.served)
		// Serve always returns a non-nil error; after Close it is http.ErrServerClosed,
		// and any other error leaves nothing useful to do in a test helper.
		_ = r.server.Serve(l)
	}()
	return r, nil
}

// Addr returns the "127.0.0.1:PORT" the registry listens on.
func (r *Registry) Addr() string {
	return r.listener.Addr().String()
}

// Ref returns the fully qualified reference "<addr>/<repo>:<tag>" of an image in this registry.
// Pulling such a name directly (rather than through a docker.io or registry.k8s.io name that
// registries.conf redirects here) is what makes containers/image send explicitly supplied
// credentials: it withholds them whenever the registry actually contacted differs from the one
// in the requested name.
func (r *Registry) Ref(repo, tag string) string {
	return r.Addr() + "/" + repo + ":" + tag
}

// Close stops serving and closes all connections, letting go of any blob GETs held by HoldBlobs.
// It is safe to call more than once.
func (r *Registry) Close() {
	r.closeOnce.Do(func() {
		r.ReleaseBlobs()
		_ = r.server.Close()
		<-r.served
	})
}

// BlobFetches returns how many times a GET of the blob with this digest (e.g. "sha256:abc...") was
// served with a 2xx status, across all repositories. HEAD requests do not count.
func (r *Registry) BlobFetches(digest string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blobGets[digest]
}

// ResetCounts forgets all blob fetches (and aborted fetches) counted so far.
func (r *Registry) ResetCounts() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.blobGets)
	clear(r.aborted)
}

// Push writes img to <addr>/<repo>:<tag> and returns the manifest digest ("sha256:...").
func (r *Registry) Push(repo, tag string, img v1.Image) (string, error) {
	ref, err := name.NewTag(r.Ref(repo, tag), name.Insecure)
	if err != nil {
		return "", fmt.Errorf("test registry: reference for %s:%s: %w", repo, tag, err)
	}
	auth := authn.Anonymous
	if r.opts.requiresAuth() {
		auth = &authn.Basic{Username: r.opts.Username, Password: r.opts.Password}
	}
	if err := remote.Write(ref, img, remote.WithAuth(auth)); err != nil {
		return "", fmt.Errorf("test registry: push %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("test registry: digest of %s: %w", ref, err)
	}
	return d.String(), nil
}

// wrap puts authentication, blob counting and the injected faults in front of the registry
// handler.
func (r *Registry) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.opts.requiresAuth() && !r.authorized(req) {
			unauthorized(w)
			return
		}
		digest, isGet := blobDigest(req)
		if !isGet {
			next.ServeHTTP(w, req)
			return
		}
		if !r.waitForGate(req) {
			panic(http.ErrAbortHandler) // the client gave up, or the registry is closing
		}
		// Count when the status is decided, before any of the response reaches the client, so
		// that a client which has read the blob always sees it counted.
		sw := &statusWriter{ResponseWriter: w, onStatus: func(code int) {
			if code >= 200 && code < 300 {
				r.mu.Lock()
				r.blobGets[digest]++
				r.mu.Unlock()
			}
		}}
		if r.isBroken(digest) {
			r.serveBroken(sw, req, next, digest)
			return
		}
		next.ServeHTTP(sw, req)
	})
}

// authorized checks the request's basic credentials in constant time.
func (r *Registry) authorized(req *http.Request) bool {
	user, pass, ok := req.BasicAuth()
	if !ok {
		return false
	}
	userOK := subtle.ConstantTimeCompare([]byte(user), []byte(r.opts.Username)) == 1
	passOK := subtle.ConstantTimeCompare([]byte(pass), []byte(r.opts.Password)) == 1
	return userOK && passOK
}

// unauthorized answers with a Basic challenge and a distribution-spec error body.
func unauthorized(w http.ResponseWriter) {
	h := w.Header()
	h.Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", registryRealm))
	h.Set("Docker-Distribution-API-Version", "registry/2.0")
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
}

// blobDigest recognises "GET /v2/<name>/blobs/<digest>" and returns the digest.
// Uploads (".../blobs/uploads/...") and every other method are not blob fetches.
func blobDigest(req *http.Request) (string, bool) {
	if req.Method != http.MethodGet {
		return "", false
	}
	parts := strings.Split(strings.TrimSuffix(req.URL.Path, "/"), "/")
	// "", "v2", <at least one name component>, "blobs", <digest>
	if len(parts) < 5 || parts[1] != "v2" || parts[len(parts)-2] != "blobs" {
		return "", false
	}
	digest := parts[len(parts)-1]
	if _, err := v1.NewHash(digest); err != nil {
		return "", false
	}
	return digest, true
}

// statusWriter reports the status code the wrapped handler sends, once, before sending it.
type statusWriter struct {
	http.ResponseWriter
	onStatus func(code int)
	decided  bool
}

func (w *statusWriter) decide(code int) {
	if !w.decided {
		w.decided = true
		w.onStatus(code)
	}
}

func (w *statusWriter) WriteHeader(code int) {
	if code >= 200 { // 1xx responses are informational; the real status follows
		w.decide(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.decide(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
