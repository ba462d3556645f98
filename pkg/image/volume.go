package image

import (
	"errors"
	"fmt"

	"go.podman.io/storage"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Image volumes (KEP-4639): an image's layers mounted read-only into a
// container at a path of its own. containers/storage mounts the image's top
// layer (with all below it) and counts the mounts, so one image can back the
// volumes of many containers.

// MountImage mounts img read-only for an image volume and returns where.
// Each successful call is paired with one UnmountImage.
func (s *Service) MountImage(img ID) (string, error) {
	s.layers.enter()
	defer s.layers.leave(s.cleanLayers)
	dir, err := s.store.MountImage(img.Hex(), nil, "")
	if err != nil {
		if errors.Is(err, storage.ErrImageUnknown) {
			return "", fmt.Errorf("image %s: %w", img, errdefs.ErrNotFound)
		}
		return "", fmt.Errorf("mount image %s: %w", img, err)
	}
	return dir, nil
}

// UnmountImage releases one MountImage of img. An image that is gone, or no
// longer mounted (a reboot cleared the mounts), is fine.
func (s *Service) UnmountImage(img ID) error {
	layer, mounts, err := s.imageMounts(img.Hex())
	if err != nil || mounts == 0 {
		return err
	}
	if _, err := s.store.UnmountImage(img.Hex(), false); err != nil && !errors.Is(err, storage.ErrImageUnknown) && !errors.Is(err, storage.ErrLayerUnknown) {
		return fmt.Errorf("unmount image %s (layer %s): %w", img, layer, err)
	}
	return nil
}

// imageMounts is the image's top layer and how many image volumes have it
// mounted; an unknown image has none.
func (s *Service) imageMounts(id string) (layer string, mounts int, err error) {
	img, err := s.store.Image(id)
	if err != nil {
		if errors.Is(err, storage.ErrImageUnknown) {
			return "", 0, nil
		}
		return "", 0, err
	}
	n, err := s.store.Mounted(img.TopLayer)
	if err != nil {
		if errors.Is(err, storage.ErrLayerUnknown) {
			return img.TopLayer, 0, nil
		}
		return img.TopLayer, 0, fmt.Errorf("mount count of image %s: %w", id, err)
	}
	return img.TopLayer, n, nil
}
