// Package image holds images: pulls, the layered store, references and the
// filesystem the store lives on.
package image

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Usage is what one filesystem-backed directory consumes, as the kubelet's
// image garbage collector and eviction manager need it.
type Usage struct {
	Mountpoint string    // the mount the directory lives on
	UsedBytes  uint64    // bytes allocated to the directory's files
	InodesUsed uint64    // files and directories under it
	Timestamp  time.Time // when the numbers were taken
}

// DirUsage measures dir: allocated bytes (hard links counted once) and inodes,
// without crossing into other filesystems mounted below it, and the mount
// point dir lives on. A missing dir uses nothing.
func DirUsage(dir string) (Usage, error) {
	u, err := dirUsage(dir)
	if err != nil {
		return u, err
	}
	u.Mountpoint, err = mountpointOf(dir)
	if errors.Is(err, fs.ErrNotExist) {
		u.Mountpoint, err = mountpointOf(filepath.Dir(dir))
	}
	return u, err
}

// dirUsage is DirUsage without the mount point.
func dirUsage(dir string) (Usage, error) {
	u := Usage{Timestamp: time.Now()}
	root, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return u, nil
	}
	if err != nil {
		return u, fmt.Errorf("measure %s: %w", dir, err)
	}
	dev := root.Sys().(*syscall.Stat_t).Dev
	seen := map[uint64]bool{}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walked
			}
			return err
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Dev != dev {
			return fs.SkipDir // another filesystem mounted inside, e.g. a container rootfs
		}
		if st.Nlink > 1 && !d.IsDir() {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		u.InodesUsed++
		u.UsedBytes += uint64(st.Blocks) * 512
		return nil
	})
	if err != nil {
		return u, fmt.Errorf("measure %s: %w", dir, err)
	}
	return u, nil
}

// mountpointOf walks up from path to the topmost directory on the same
// device, which is where that filesystem is mounted.
func mountpointOf(path string) (string, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("find mount point of %s: %w", path, err)
	}
	dev := fi.Sys().(*syscall.Stat_t).Dev
	for path != "/" {
		parent := filepath.Dir(path)
		pfi, err := os.Stat(parent)
		if err != nil || pfi.Sys().(*syscall.Stat_t).Dev != dev {
			break
		}
		path = parent
	}
	return path, nil
}

// FsUsage measures the store. Images and containers' writable layers share
// the graph root, so normally one image filesystem is reported and no
// container filesystem (the kubelet then treats them as one). With a split
// store (storage.conf's imagestore), image layers live in the image store and
// writable layers in the graph root, and both are reported, so the kubelet's
// image GC and eviction each see their own disk.
func (s *Service) FsUsage() (images []Usage, containers []Usage, err error) {
	graph, err := DirUsage(s.store.GraphRoot())
	if err != nil {
		return nil, nil, err
	}
	imageStore := s.store.ImageStore()
	if imageStore == "" || imageStore == s.store.GraphRoot() {
		return []Usage{graph}, nil, nil
	}
	img, err := DirUsage(imageStore)
	if err != nil {
		return nil, nil, err
	}
	return []Usage{img}, []Usage{graph}, nil
}
