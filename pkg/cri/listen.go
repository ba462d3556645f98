package cri

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Listen opens the CRI unix socket at path: root-owned, mode 0660. A socket
// left behind by a daemon that died is removed; a socket that a live daemon
// still answers on is an error, as is any other kind of file at path.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create socket directory: %w", err)
	}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("inspect %s: %w", path, err)
	case fi.Mode()&fs.ModeSocket == 0:
		return nil, fmt.Errorf("%s exists and is not a socket; not removing it: %w", path, errdefs.ErrAlreadyExists)
	default:
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("another daemon is serving on %s: %w", path, errdefs.ErrAlreadyExists)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		lis.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	if err := os.Chown(path, 0, 0); err != nil && os.Geteuid() == 0 {
		lis.Close()
		return nil, fmt.Errorf("chown %s: %w", path, err)
	}
	return lis, nil
}
