package image

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/configfile"

	"github.com/cri-runtime/cri-runtime/pkg/version"
)

// Options configure the image service.
type Options struct {
	Root  string // persistent directory: the layer store, blob cache, temporary files
	State string // volatile directory: the store's run root

	RegistriesConf  string   // registries.conf; "" = the system's
	SignaturePolicy string   // policy.json; "" = the system's, or accept anything if none
	StorageDriver   string   // "" = storage.conf's, else overlay
	StorageOptions  []string // "" = storage.conf's
	ImageStore      string   // split image store; "" = storage.conf's
	Pinned          []string // name globs reported as pinned
	// LayerRemovals, when set, are waited for before an image is removed:
	// an image whose last container was just removed is then no longer in
	// use by its writable layer.
	LayerRemovals LayerRemovals
}

// Service keeps images in a containers/storage store: every layer once,
// shared by all images and containers made from it. Pulls go through
// containers/image with the containers ecosystem's configuration files.
// All methods are safe for concurrent use.
type Service struct {
	opts  Options
	log   *slog.Logger
	store storage.Store
	sys   *types.SystemContext

	// pulls holds the pulls in flight, so concurrent pulls of one image
	// share one download.
	pullsMu sync.Mutex
	pulls   map[string]*flight
	// download is s.pull; tests replace it.
	download func(ctx context.Context, name string, auth *Auth) (*Image, error)

	// layers orders pulls and writable-layer creations against the
	// removal of layers no image or container uses, so a cleanup never
	// deletes a layer a running pull has just written.
	layers layerUsers

	// details caches what never changes for an image ID: its config,
	// manifest and size.
	detailsMu sync.Mutex
	details   map[ID]*details

	// places caches where each container's writable layer lives
	// (WritableLayerUsage).
	placesMu sync.Mutex
	places   map[string]layerPlace

	warnNoPolicy sync.Once
}

// LayerRemovals are the removals of writable layers (and the image
// volumes' mounts released with them) that run after RemoveContainer
// returned (container.Removals).
type LayerRemovals interface {
	// WaitLayerRemovals returns once those under way are done.
	WaitLayerRemovals(ctx context.Context) error
}

// Open opens (creating if needed) the image store under opts.Root.
func Open(opts Options, log *slog.Logger) (*Service, error) {
	storeOpts, err := storage.DefaultStoreOptions() // honours storage.conf
	if err != nil {
		return nil, fmt.Errorf("read storage.conf: %w", err)
	}
	storeOpts.GraphRoot = filepath.Join(opts.Root, "storage")
	storeOpts.RunRoot = filepath.Join(opts.State, "storage")
	storeOpts.TransientStore = false
	if opts.StorageDriver != "" {
		storeOpts.GraphDriverName = opts.StorageDriver
	}
	if storeOpts.GraphDriverName == "" {
		storeOpts.GraphDriverName = "overlay"
	}
	if opts.ImageStore != "" {
		storeOpts.ImageStore = opts.ImageStore
	}
	if len(opts.StorageOptions) > 0 {
		storeOpts.GraphDriverOptions = opts.StorageOptions
	}
	store, err := storage.GetStore(storeOpts)
	if err != nil {
		return nil, fmt.Errorf("open image store %s (%s driver): %w", storeOpts.GraphRoot, storeOpts.GraphDriverName, err)
	}
	// A container in a user namespace of its own reaches its root
	// filesystem, below these, as an unprivileged user on the node: they
	// must be searchable (not listable) by others, as containerd's roots are.
	for _, dir := range []string{store.GraphRoot(), filepath.Join(store.GraphRoot(), store.GraphDriverName())} {
		if err := os.Chmod(dir, 0o711); err != nil && !errors.Is(err, os.ErrNotExist) {
			store.Shutdown(false)
			return nil, fmt.Errorf("make %s searchable: %w", dir, err)
		}
	}
	tmp := filepath.Join(opts.Root, "tmp")
	// Leftovers of pulls that were interrupted by a crash.
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("clean %s: %w", tmp, err)
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, err
	}
	s := &Service{
		opts:  opts,
		log:   log,
		store: store,
		sys: &types.SystemContext{
			SystemRegistriesConfPath: opts.RegistriesConf,
			SignaturePolicyPath:      opts.SignaturePolicy,
			// Keep everything containers/image writes under our own
			// directories. The blob info cache (which compressed blob is
			// which uncompressed layer) is an SQLite database that syncs
			// every transaction: tens of fsyncs per pull, a good part of
			// a small image's pull on a node's disk. It is only a cache —
			// the store itself records each layer's compressed and
			// uncompressed digests, which is what finds a layer to reuse —
			// so it lives in the volatile state (tmpfs on a node, where a
			// sync costs nothing) and a reboot empties it.
			BigFilesTemporaryDir:    tmp,
			BlobInfoCacheDir:        filepath.Join(opts.State, "cache"),
			DockerRegistryUserAgent: "cri-runtime/" + version.String(),
			// There is never a terminal to ask which registry a short name
			// means: try the search registries in order, record nothing.
			ShortNameMode: ptr(types.ShortNameModeDisabled),
		},
		pulls:   map[string]*flight{},
		details: map[ID]*details{},
	}
	s.download = s.pull
	if err := os.MkdirAll(s.sys.BlobInfoCacheDir, 0o700); err != nil {
		return nil, err
	}
	// Where the cache was kept before it moved to the state.
	if err := os.RemoveAll(filepath.Join(opts.Root, "cache")); err != nil {
		log.Warn("remove the old blob info cache", "err", err)
	}
	if _, err := s.policy(); err != nil {
		store.Shutdown(false)
		return nil, err
	}
	// A layer write interrupted by a crash is dropped by the store when it
	// opens; an image standing on it can no longer be used, and goes too,
	// so that the kubelet pulls it again instead of failing on it.
	if n, err := s.removeBrokenImages(); err != nil {
		log.Warn("remove images whose layers are gone", "err", err)
	} else if n > 0 {
		log.Info("removed images whose layers were lost (interrupted writes); they will be pulled again", "images", n)
	}
	// A pull interrupted by a crash may have left layers no image uses.
	if n, err := s.removeUnusedLayers(); err != nil {
		log.Warn("remove unused layers", "err", err)
	} else if n > 0 {
		log.Info("removed layers left by interrupted pulls", "layers", n)
	}
	log.Info("image store open", "graph_root", store.GraphRoot(), "image_store", store.ImageStore(), "driver", store.GraphDriverName())
	return s, nil
}

// removeBrokenImages deletes the images whose top layer the store no
// longer has.
func (s *Service) removeBrokenImages() (int, error) {
	images, err := s.store.Images()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, img := range images {
		if img.TopLayer == "" {
			continue // an image without layers
		}
		if _, err := s.store.Layer(img.TopLayer); !errors.Is(err, storage.ErrLayerUnknown) {
			continue
		}
		if _, err := s.store.DeleteImage(img.ID, true); err != nil && !errors.Is(err, storage.ErrImageUnknown) {
			return n, fmt.Errorf("delete image %s: %w", img.ID, err)
		}
		s.log.Warn("removed an image whose layers are gone", "image", img.ID, "names", img.Names)
		n++
	}
	return n, nil
}

// Close unmounts what the store mounted and releases it.
func (s *Service) Close() error {
	_, err := s.store.Shutdown(false)
	return err
}

// policy returns the signature policy: the configured file, else the
// system's policy.json, else (when none exists anywhere) accept anything,
// with a warning. It is read on every pull, so edits apply at once.
func (s *Service) policy() (*signature.PolicyContext, error) {
	p, err := signature.DefaultPolicy(s.sys)
	if err != nil {
		if s.sys.SignaturePolicyPath != "" || !errors.Is(err, configfile.ErrConfigFileNotFound) {
			return nil, fmt.Errorf("load signature policy: %w", err)
		}
		s.warnNoPolicy.Do(func() {
			s.log.Warn("no signature policy (policy.json) found; accepting images without verifying signatures")
		})
		p = &signature.Policy{Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}}
	}
	return signature.NewPolicyContext(p)
}

func ptr[T any](v T) *T { return &v }
