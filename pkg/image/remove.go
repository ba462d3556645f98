package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"go.podman.io/storage"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Remove deletes the image ref names, with all of its tags. An image that
// is not there is not an error (the CRI makes removal idempotent). An image
// that containers were made from is kept, and the error names them: their
// writable layers stand on its layers. Removals of containers under way
// are waited for first: a container the kubelet has removed does not hold
// its image.
func (s *Service) Remove(ctx context.Context, ref string) error {
	img, err := s.lookup(ref)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if s.opts.LayerRemovals != nil {
		if err := s.opts.LayerRemovals.WaitLayerRemovals(ctx); err != nil {
			return fmt.Errorf("remove image %s: %w", ref, err)
		}
	}
	if users, err := s.containersOf(img.ID); err != nil {
		return err
	} else if len(users) > 0 {
		return fmt.Errorf("image %s is used by container(s) %s; remove them first: %w", ref, strings.Join(users, ", "), errdefs.ErrFailedPrecondition)
	}
	if _, n, err := s.imageMounts(img.ID); err != nil {
		return err
	} else if n > 0 {
		return fmt.Errorf("image %s is mounted as an image volume by %d container(s); remove them first: %w", ref, n, errdefs.ErrFailedPrecondition)
	}
	if err := s.roomToRewriteIndexes(); err != nil {
		return fmt.Errorf("remove image %s: %w", ref, err)
	}
	if _, err := s.store.DeleteImage(img.ID, true); err != nil {
		// A concurrent RemoveImage got there first: the image is gone,
		// which is all this call promises (api.proto: idempotent).
		if errors.Is(err, storage.ErrImageUnknown) || errors.Is(err, storage.ErrNotAnImage) {
			return nil
		}
		if errors.Is(err, storage.ErrImageUsedByContainer) {
			return fmt.Errorf("image %s: %v: %w", ref, err, errdefs.ErrFailedPrecondition)
		}
		return fmt.Errorf("remove image %s: %w", ref, err)
	}
	s.detailsMu.Lock()
	delete(s.details, ID(img.ID))
	s.detailsMu.Unlock()
	s.log.Info("removed image", "image", ref, "id", img.ID, "names", img.Names)
	return nil
}

func (s *Service) containersOf(imageID string) ([]string, error) {
	ctrs, err := s.store.Containers()
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []string
	for _, c := range ctrs {
		if c.ImageID == imageID {
			out = append(out, c.ID)
		}
	}
	return out, nil
}

// cleanLayers removes the unused layers and logs what it did; it runs
// with no layer user (s.layers).
func (s *Service) cleanLayers() {
	if n, err := s.removeUnusedLayers(); err != nil {
		s.log.Warn("remove layers of a failed pull", "err", err)
	} else if n > 0 {
		s.log.Info("removed layers of a failed pull", "layers", n)
	}
}

// removeUnusedLayers deletes the layers that no image and no container
// stands on: what interrupted or failed pulls wrote. The caller makes sure
// no pull is in flight (its layers are not yet part of an image): at
// start-up, or through s.layers. It returns how many layers it removed.
func (s *Service) removeUnusedLayers() (int, error) {

	layers, err := s.store.Layers()
	if err != nil {
		return 0, err
	}
	parent := make(map[string]string, len(layers))
	for _, l := range layers {
		parent[l.ID] = l.Parent
	}
	used := map[string]bool{}
	markChain := func(id string) {
		for id != "" && !used[id] {
			used[id] = true
			id = parent[id]
		}
	}
	imgs, err := s.store.Images()
	if err != nil {
		return 0, err
	}
	for _, img := range imgs {
		markChain(img.TopLayer)
		for _, l := range img.MappedTopLayers {
			markChain(l)
		}
	}
	ctrs, err := s.store.Containers()
	if err != nil {
		return 0, err
	}
	for _, c := range ctrs {
		markChain(c.LayerID)
	}

	// Delete children before their parents: deepest first.
	depth := func(id string) int {
		n := 0
		for ; id != ""; id = parent[id] {
			n++
		}
		return n
	}
	var unused []string
	for _, l := range layers {
		if !used[l.ID] {
			unused = append(unused, l.ID)
		}
	}
	sort.Slice(unused, func(i, j int) bool { return depth(unused[i]) > depth(unused[j]) })
	removed := 0
	for _, id := range unused {
		if err := s.store.DeleteLayer(id); err != nil && !errors.Is(err, storage.ErrLayerUnknown) {
			return removed, fmt.Errorf("delete unused layer %s: %w", id, err)
		}
		removed++
	}
	return removed, nil
}

// roomToRewriteIndexes fails with ENOSPC, before the store changes
// anything, when the graph root has no room to rewrite the store's image
// and layer indexes. The store takes an image out of its memory before it
// saves the index: a save failing on a full disk would leave an image
// gone from the listing but still on disk, its layers kept until a restart
// brings it back. Checked first, the call fails cleanly and a retry once
// space returns does the whole removal.
func (s *Service) roomToRewriteIndexes() error {
	root := s.store.GraphRoot()
	driver := s.store.GraphDriverName()
	need := int64(64 << 10) // headroom for the temporary files' pages
	for _, dir := range []string{driver + "-images", driver + "-layers"} {
		files, _ := filepath.Glob(filepath.Join(root, dir, "*.json"))
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil {
				need += fi.Size()
			}
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return nil // cannot tell: let the store try
	}
	if avail := int64(st.Bavail) * st.Bsize; avail < need {
		return fmt.Errorf("%d bytes free under %s, %d needed to rewrite the image store's indexes: %w", avail, root, need, syscall.ENOSPC)
	}
	return nil
}
