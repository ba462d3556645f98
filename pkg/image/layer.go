package image

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"
	"go.podman.io/storage/pkg/idtools"
)

// WritableLayer is a container's own layer on top of its image's, mounted.
type WritableLayer struct {
	Rootfs string // where the layer stack is mounted
}

// IDMappings are a container's user namespace mappings: its writable layer
// and its image's files are then seen as owned by the container's IDs
// (through idmapped mounts where the kernel has them, else a copy of the
// image's layers chowned by containers/storage).
// They are the OCI spec's, as the container's spec carries them.
type IDMappings struct{ UIDs, GIDs []specs.LinuxIDMapping }

func storageMaps(in []specs.LinuxIDMapping) []idtools.IDMap {
	out := make([]idtools.IDMap, 0, len(in))
	for _, m := range in {
		out = append(out, idtools.IDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
	}
	return out
}

// CreateWritableLayer makes the writable layer of container id (named
// name) on top of image, and mounts it; mappings (nil for none) are the
// container's user namespace. It is a layer user, as pulls are, so the
// removal of unused layers never sees the new layer before the container
// that owns it.
func (s *Service) CreateWritableLayer(id, name string, image ID, mappings *IDMappings) (*WritableLayer, error) {
	s.layers.enter()
	defer s.layers.leave(s.cleanLayers)
	var opts *storage.ContainerOptions
	if mappings != nil {
		opts = &storage.ContainerOptions{IDMappingOptions: storage.IDMappingOptions{
			UIDMap: storageMaps(mappings.UIDs), GIDMap: storageMaps(mappings.GIDs),
		}}
	}
	if _, err := s.store.CreateContainer(id, []string{name}, image.Hex(), "", "", opts); err != nil {
		if errors.Is(err, storage.ErrDuplicateName) || errors.Is(err, storage.ErrDuplicateID) {
			return nil, fmt.Errorf("writable layer for %s: %w", id, err)
		}
		return nil, fmt.Errorf("create writable layer for container %s: %w", id, err)
	}
	rootfs, err := s.store.Mount(id, "")
	if err != nil {
		_ = s.store.DeleteContainer(id)
		return nil, fmt.Errorf("mount container %s: %w", id, err)
	}
	if mappings != nil {
		// The container's root reaches its rootfs as an unprivileged user
		// on the node: the layer's directory, where the mount point is,
		// must be searchable (the graph root is, see Open).
		if err := os.Chmod(filepath.Dir(rootfs), 0o711); err != nil {
			_, _ = s.store.Unmount(id, true)
			_ = s.store.DeleteContainer(id)
			return nil, fmt.Errorf("make the layer of container %s searchable: %w", id, err)
		}
	}
	return &WritableLayer{Rootfs: rootfs}, nil
}

// RemoveWritableLayer unmounts and deletes container id's layer; gone
// already is fine.
func (s *Service) RemoveWritableLayer(id string) error {
	s.placesMu.Lock()
	delete(s.places, id)
	s.placesMu.Unlock()
	if _, err := s.store.Unmount(id, true); err != nil && !errors.Is(err, storage.ErrContainerUnknown) && !errors.Is(err, storage.ErrLayerUnknown) {
		return fmt.Errorf("unmount container %s: %w", id, err)
	}
	if err := s.store.DeleteContainer(id); err != nil && !errors.Is(err, storage.ErrContainerUnknown) {
		return fmt.Errorf("delete writable layer of %s: %w", id, err)
	}
	return nil
}

// WritableLayerUsage is the bytes and inodes container id's own layer (its
// upper directory) uses, and its mount point's filesystem. Where the layer
// lives never changes, so it is looked up in the store once per container:
// the kubelet asks at every relist, for every container.
func (s *Service) WritableLayerUsage(id string) (Usage, error) {
	p, err := s.layerPlace(id)
	if err != nil {
		return Usage{}, err
	}
	if p.upper == "" {
		// A driver without an upper directory (vfs): the store sizes it.
		size, err := s.store.ContainerSize(id)
		if err != nil {
			return Usage{}, fmt.Errorf("size of container %s: %w", id, err)
		}
		return Usage{UsedBytes: uint64(max(size, 0)), Mountpoint: p.mountpoint, Timestamp: time.Now()}, nil
	}
	u, err := dirUsage(p.upper)
	if err != nil {
		return Usage{}, err
	}
	u.Mountpoint = p.mountpoint
	return u, nil
}

// layerPlace is where a container's writable layer lives.
type layerPlace struct {
	upper      string // its upper directory; "" when the driver has none
	mountpoint string // the filesystem that holds it
}

func (s *Service) layerPlace(id string) (layerPlace, error) {
	s.placesMu.Lock()
	p, ok := s.places[id]
	s.placesMu.Unlock()
	if ok {
		return p, nil
	}
	c, err := s.store.Container(id)
	if err != nil {
		return p, fmt.Errorf("container %s: %w", id, err)
	}
	if meta, err := s.store.GraphDriver(); err == nil {
		if m, err := meta.Metadata(c.LayerID); err == nil {
			p.upper = m["UpperDir"]
		}
	}
	at := s.store.GraphRoot()
	if p.upper != "" {
		at = p.upper
	}
	if p.mountpoint, err = mountpointOf(at); err != nil {
		return p, err
	}
	s.placesMu.Lock()
	if s.places == nil {
		s.places = map[string]layerPlace{}
	}
	s.places[id] = p
	s.placesMu.Unlock()
	return p, nil
}

// WritableLayerDiff is what container id changed in its writable layer, as
// a tar with AUFS-style whiteouts (".wh.<name>") for what it deleted.
func (s *Service) WritableLayerDiff(id string) (io.ReadCloser, error) {
	c, err := s.store.Container(id)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	rc, err := s.store.Diff("", c.LayerID, &storage.DiffOptions{Compression: ptr(archive.Uncompressed)})
	if err != nil {
		return nil, fmt.Errorf("diff of the writable layer of %s: %w", id, err)
	}
	return rc, nil
}

// ApplyWritableLayerDiff unpacks a diff (as WritableLayerDiff makes them)
// into container id's writable layer, before its process runs. The
// store's unpacker keeps every name inside the layer.
func (s *Service) ApplyWritableLayerDiff(id string, diff io.Reader) error {
	c, err := s.store.Container(id)
	if err != nil {
		return fmt.Errorf("container %s: %w", id, err)
	}
	if _, err := s.store.ApplyDiff(c.LayerID, diff); err != nil {
		return fmt.Errorf("apply the checkpoint's file changes to container %s: %w", id, err)
	}
	return nil
}
