package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/shortnames"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Image is an image in the store as the CRI reports it.
type Image struct {
	ID          ID
	RepoTags    []string // "registry/repo:tag"
	RepoDigests []string // "registry/repo@sha256:<manifest digest>"
	Size        uint64   // bytes of all layers, unpacked
	User        string   // the config's USER, as written there
	Pinned      bool
	Created     time.Time

	Config         *imgspecv1.Image // the image configuration, in OCI form
	ManifestDigest digest.Digest
	Layers         []types.BlobInfo // the manifest's layers, base first
	// Annotations are the manifest's (OCI manifests have them; a
	// checkpoint image says what it is in them).
	Annotations map[string]string
}

// details is what an image ID always means; cached because reading it
// costs a manifest and a config parse.
type details struct {
	config         *imgspecv1.Image
	manifestDigest digest.Digest
	layers         []types.BlobInfo
	size           uint64
	annotations    map[string]string
}

// describe turns a store image into an Image.
func (s *Service) describe(ctx context.Context, img *storage.Image) (*Image, error) {
	d, err := s.detailsOf(ctx, img)
	if err != nil {
		return nil, err
	}
	out := &Image{
		ID:             ID(img.ID),
		Size:           d.size,
		Config:         d.config,
		ManifestDigest: d.manifestDigest,
		Layers:         d.layers,
		Annotations:    d.annotations,
		Created:        img.Created,
	}
	if d.config.Created != nil {
		out.Created = *d.config.Created
	}
	out.User = d.config.Config.User
	repos := map[string]bool{}
	for _, name := range img.Names {
		named, err := reference.ParseNormalizedNamed(name)
		if err != nil {
			continue
		}
		if tag, ok := repoTag(named); ok {
			out.RepoTags = append(out.RepoTags, tag)
		}
		repos[named.Name()] = true
	}
	digests := img.Digests
	if len(digests) == 0 && img.Digest != "" {
		digests = []digest.Digest{img.Digest}
	}
	for repo := range repos {
		for _, dg := range digests {
			out.RepoDigests = append(out.RepoDigests, repo+"@"+dg.String())
		}
	}
	slices.Sort(out.RepoTags)
	slices.Sort(out.RepoDigests)
	out.Pinned = s.pinned(out)
	return out, nil
}

func (s *Service) detailsOf(ctx context.Context, img *storage.Image) (*details, error) {
	id := ID(img.ID)
	s.detailsMu.Lock()
	d, ok := s.details[id]
	s.detailsMu.Unlock()
	if ok {
		return d, nil
	}
	ref, err := istorage.Transport.NewStoreReference(s.store, nil, img.ID)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.ID, err)
	}
	src, err := ref.NewImage(ctx, s.sys)
	if err != nil {
		return nil, fmt.Errorf("open image %s: %w", img.ID, err)
	}
	defer src.Close()
	config, err := src.OCIConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("read config of image %s: %w", img.ID, err)
	}
	manifest, _, err := src.Manifest(ctx)
	if err != nil {
		return nil, fmt.Errorf("read manifest of image %s: %w", img.ID, err)
	}
	size, err := s.store.ImageSize(img.ID)
	if err != nil {
		return nil, fmt.Errorf("size of image %s: %w", img.ID, err)
	}
	// Only OCI manifests (and indexes) carry annotations; any other
	// manifest decodes to none.
	var annotated struct {
		Annotations map[string]string `json:"annotations"`
	}
	_ = json.Unmarshal(manifest, &annotated)
	d = &details{config: config, manifestDigest: digest.FromBytes(manifest), layers: src.LayerInfos(), size: uint64(max(size, 0)),
		annotations: annotated.Annotations}
	s.detailsMu.Lock()
	s.details[id] = d
	s.detailsMu.Unlock()
	return d, nil
}

// pinned reports whether any of the image's names matches a pinned glob.
func (s *Service) pinned(img *Image) bool {
	for _, pattern := range s.opts.Pinned {
		for _, name := range append(slices.Clone(img.RepoTags), img.RepoDigests...) {
			if ok, _ := path.Match(pattern, name); ok {
				return true
			}
		}
	}
	return false
}

// List returns every image in the store, or with filter set only the image
// filter names (by name, short name or ID).
func (s *Service) List(ctx context.Context, filter string) ([]*Image, error) {
	if filter != "" {
		img, err := s.Status(ctx, filter)
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return []*Image{img}, nil
	}
	imgs, err := s.store.Images()
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]*Image, 0, len(imgs))
	for i := range imgs {
		img, err := s.describe(ctx, &imgs[i])
		if errors.Is(err, storage.ErrImageUnknown) || errors.Is(err, storage.ErrLayerUnknown) {
			continue // removed while we listed
		}
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}

// Status finds one image by full or truncated ID, or by name (short names
// resolved as registries.conf says), and describes it. An image that is not
// there is an ErrNotFound error.
func (s *Service) Status(ctx context.Context, ref string) (*Image, error) {
	img, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	return s.describe(ctx, img)
}

// lookup resolves ref to a store image.
func (s *Service) lookup(ref string) (*storage.Image, error) {
	if id, ok := parseID(ref); ok {
		if img, err := s.store.Image(id.Hex()); err == nil {
			return img, nil
		}
		return nil, fmt.Errorf("image %s: %w", ref, errdefs.ErrNotFound)
	}
	candidates, nameErr := s.localCandidates(dropTagIfDigested(ref))
	for _, c := range candidates {
		sref, err := istorage.Transport.NewStoreReference(s.store, c, "")
		if err != nil {
			continue
		}
		if img, err := istorage.Transport.GetStoreImage(s.store, sref); err == nil {
			return img, nil
		}
	}
	if prefix, ok := idPrefix(ref); ok {
		return s.lookupPrefix(ref, prefix)
	}
	if nameErr != nil {
		return nil, nameErr
	}
	return nil, fmt.Errorf("image %s: %w", ref, errdefs.ErrNotFound)
}

// lookupPrefix finds the one image whose ID starts with prefix.
func (s *Service) lookupPrefix(ref, prefix string) (*storage.Image, error) {
	imgs, err := s.store.Images()
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var found *storage.Image
	for i := range imgs {
		if strings.HasPrefix(imgs[i].ID, prefix) {
			if found != nil {
				return nil, fmt.Errorf("image ID prefix %s is ambiguous: it matches %s and %s: %w", ref, found.ID, imgs[i].ID, errdefs.ErrInvalidArgument)
			}
			found = &imgs[i]
		}
	}
	if found == nil {
		return nil, fmt.Errorf("image %s: %w", ref, errdefs.ErrNotFound)
	}
	return found, nil
}

// localCandidates are the names ref may be stored under.
func (s *Service) localCandidates(ref string) ([]reference.Named, error) {
	if _, err := parseName(ref); err != nil {
		return nil, err
	}
	out, err := shortnames.ResolveLocally(s.sys, ref)
	if err != nil {
		return nil, fmt.Errorf("resolve %q: %v: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	if shortnames.IsShortName(ref) {
		// Pulls of short names fall back to docker.io; so does lookup.
		if named, err := reference.ParseNormalizedNamed(ref); err == nil {
			out = append(out, reference.TagNameOnly(named))
		}
	}
	return out, nil
}
