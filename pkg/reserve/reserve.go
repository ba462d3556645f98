// Package reserve keeps a few megabytes of the daemon's disk in a file it
// can give back. On a full disk every call that writes a record fails, and
// among them are the ones that free space: the kubelet answers disk pressure
// by stopping and removing containers, pods and images. Those calls may
// release the reserve and try again; the reserve is made again once there
// is room. The idea is the ballast file of databases that must be able to
// delete on a full disk.
package reserve

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Size is what the reserve holds: enough for the records and the image
// store's indexes that a removal rewrites.
const Size = 4 << 20

// Reserve is the reserve file at one path. Safe for concurrent use.
type Reserve struct {
	path string
	size int64

	mu   sync.Mutex
	held bool // the file exists with its full size
}

// New returns the reserve at dir/name and makes it when there is room (a
// full disk at start-up leaves it empty until Restore succeeds).
func New(dir, name string, size int64) (*Reserve, error) {
	r := &Reserve{path: filepath.Join(dir, name), size: size}
	if err := r.Restore(); err != nil && !errors.Is(err, unix.ENOSPC) {
		return nil, err
	}
	return r, nil
}

// Held reports whether the reserve's space is set aside.
func (r *Reserve) Held() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.held
}

// Release gives the reserve's space back to the filesystem. It reports
// whether there was any to give.
func (r *Reserve) Release() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.held {
		return false
	}
	if err := os.Remove(r.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false
	}
	r.held = false
	return true
}

// Restore sets the space aside again, allocated so that later writes cannot
// take it. On a disk without room it leaves no partial file and returns
// ENOSPC.
func (r *Reserve) Restore() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held {
		return nil
	}
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("disk reserve: %w", err)
	}
	err = unix.Fallocate(int(f.Fd()), 0, 0, r.size)
	if errors.Is(err, unix.EOPNOTSUPP) {
		err = writeZeros(f, r.size) // filesystems without fallocate
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(r.path)
		return fmt.Errorf("disk reserve %s: %w", r.path, err)
	}
	r.held = true
	return nil
}

func writeZeros(f *os.File, size int64) error {
	buf := make([]byte, 64<<10)
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := min(int64(len(buf)), size-off)
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			return err
		}
	}
	return nil
}

// KeepRestoring sets the reserve aside again whenever it is found released
// and there is room, every interval, until ctx ends.
func (r *Reserve) KeepRestoring(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if !r.Held() {
				_ = r.Restore()
			}
		}
	}
}
