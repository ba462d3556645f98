package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/oci/spec"
)

// ImageVolume is an image mounted read-only into the container (KEP-4639):
// all of the image, or the directory SubPath of it.
type ImageVolume struct {
	ContainerPath string
	Image         string // as requested: a name, an ID or a digest reference
	SubPath       string // relative, inside the image; "" for all of it
}

// validateImageSubPath checks an image volume's sub-path: relative, and
// never leaving the image.
func validateImageSubPath(p string) error {
	if p == "" {
		return nil
	}
	if path.IsAbs(p) || path.Clean(p) == ".." || strings.HasPrefix(path.Clean(p), "../") {
		return fmt.Errorf("image_sub_path %q must be a relative path inside the image: %w", p, errdefs.ErrInvalidArgument)
	}
	return nil
}

// resolveImageVolumes finds each volume's image, which must have been
// pulled, and returns the mounts the container's record keeps of them.
func (s *Service) resolveImageVolumes(ctx context.Context, vols []ImageVolume) ([]Mount, error) {
	out := make([]Mount, 0, len(vols))
	for _, v := range vols {
		img, err := s.opts.Images.Status(ctx, v.Image)
		if err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				return nil, fmt.Errorf("image volume %s: image %q is not present: pull it first: %w", v.ContainerPath, v.Image, errdefs.ErrNotFound)
			}
			return nil, err
		}
		out = append(out, Mount{ContainerPath: v.ContainerPath, Readonly: true, Image: v.Image, ImageID: img.ID, ImageSubPath: v.SubPath})
	}
	return out, nil
}

// mountImageVolumes mounts each image volume's image and returns the bind
// mounts that put them in the container. What it mounted is unmounted when
// it fails; on success, unmountImageVolumes undoes it.
func (s *Service) mountImageVolumes(vols []Mount) (_ []spec.Mount, retErr error) {
	var mounted []Mount
	defer func() {
		if retErr != nil {
			s.unmountImageVolumes(mounted)
		}
	}()
	out := make([]spec.Mount, 0, len(vols))
	for _, v := range vols {
		dir, err := s.opts.Images.MountImage(v.ImageID)
		if err != nil {
			return nil, fmt.Errorf("image volume %s: %w", v.ContainerPath, err)
		}
		mounted = append(mounted, v)
		src := dir
		if v.ImageSubPath != "" {
			// Resolved inside the image: a symlink in it cannot lead out.
			if src, err = securejoin.SecureJoin(dir, v.ImageSubPath); err != nil {
				return nil, fmt.Errorf("image volume %s: sub-path %q: %w", v.ContainerPath, v.ImageSubPath, err)
			}
			if _, err := os.Stat(src); err != nil {
				return nil, fmt.Errorf("image volume %s: sub-path %q does not exist in image %s: %w", v.ContainerPath, v.ImageSubPath, v.Image, errdefs.ErrInvalidArgument)
			}
		}
		// Read-only, without device nodes or set-id programs, but executable:
		// programs in an image volume are meant to run.
		out = append(out, spec.Mount{ContainerPath: v.ContainerPath, HostPath: src, Readonly: true, Options: []string{"nosuid", "nodev"}})
	}
	return out, nil
}

// unmountImageVolumes releases the images mounted for the container's image
// volumes, logging what it cannot.
func (s *Service) unmountImageVolumes(mounts []Mount) {
	for _, m := range mounts {
		if m.ImageID == "" {
			continue
		}
		if err := s.opts.Images.UnmountImage(m.ImageID); err != nil {
			s.log.Warn("unmount image volume", "image", m.ImageID, "path", m.ContainerPath, "err", err)
		}
	}
}
