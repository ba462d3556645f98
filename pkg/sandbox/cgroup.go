package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"

	"github.com/cri-runtime/cri-runtime/pkg/config"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// cgroupPath turns the pod's cgroup parent into a cgroupfs path. With the
// systemd driver the parent is a slice name ("kubepods-burstable-pod1.slice"),
// which systemd nests by its dashes; with cgroupfs it is a path. An empty
// parent gets a default of our own under /cri-runtime.
func cgroupPath(driver, parent, podID string) (string, error) {
	if driver == config.SystemdDriver {
		if parent == "" {
			parent = "cri_runtime.slice"
		}
		if !strings.HasSuffix(parent, ".slice") || strings.Contains(parent, "/") {
			return "", fmt.Errorf("cgroup_parent %q must be a systemd slice name (like kubepods-besteffort.slice) with the systemd cgroup driver: %w", parent, errdefs.ErrInvalidArgument)
		}
		return expandSlice(parent)
	}
	if parent == "" {
		return "/cri-runtime/pod-" + podID[:12], nil
	}
	clean := filepath.Clean("/" + parent)
	if strings.Contains(parent, "..") {
		return "", fmt.Errorf("cgroup_parent %q must not contain '..': %w", parent, errdefs.ErrInvalidArgument)
	}
	return clean, nil
}

// expandSlice maps "a-b-c.slice" to "/a.slice/a-b.slice/a-b-c.slice".
func expandSlice(slice string) (string, error) {
	name := strings.TrimSuffix(slice, ".slice")
	if name == "-" || name == "" {
		return "/", nil
	}
	if strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-") || strings.Contains(name, "--") {
		return "", fmt.Errorf("invalid slice name %q: %w", slice, errdefs.ErrInvalidArgument)
	}
	var path, prefix string
	for _, part := range strings.Split(name, "-") {
		prefix += part
		path += "/" + prefix + ".slice"
		prefix += "-"
	}
	return path, nil
}

func cgroupManager(path string) (cgroups.Manager, error) {
	return manager.New(&cgroups.Cgroup{Path: path, Resources: &cgroups.Resources{SkipDevices: true}})
}

// ensureCgroup creates the cgroup at path in every hierarchy when it does
// not exist yet. It returns the topmost directory it had to create ("" when
// the cgroup existed), so removal can take away exactly what we made. The
// kubelet normally creates pod cgroups itself; then we leave them to it.
func ensureCgroup(path string) (string, error) {
	if cgroupExists(path) {
		return "", nil
	}
	top := path
	for parent := filepath.Dir(top); parent != "/" && !cgroupExists(parent); parent = filepath.Dir(parent) {
		top = parent
	}
	m, err := cgroupManager(path)
	if err != nil {
		return "", fmt.Errorf("cgroup %s: %w", path, err)
	}
	if err := m.Apply(-1); err != nil {
		_ = removeCgroup(path, top)
		return "", fmt.Errorf("create cgroup %s: %w", path, err)
	}
	return top, nil
}

// cgroupExists looks in the unified hierarchy, or in the memory controller's
// on cgroup v1.
func cgroupExists(path string) bool {
	base := "/sys/fs/cgroup"
	if !cgroups.IsCgroup2UnifiedMode() {
		base = "/sys/fs/cgroup/memory"
	}
	_, err := os.Stat(filepath.Join(base, path))
	return err == nil
}

// removeCgroup removes a cgroup we created, then each ancestor up to top
// that we created with it and that nothing else uses now (a non-empty one is
// shared with another pod and stays). Gone already is fine.
func removeCgroup(path, top string) error {
	m, err := cgroupManager(path)
	if err != nil {
		return err
	}
	if err := m.Destroy(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove cgroup %s: %w", path, err)
	}
	for dir := filepath.Dir(path); top != "" && dir != "/" && strings.HasPrefix(path, top) && len(dir) >= len(top); dir = filepath.Dir(dir) {
		parent, err := cgroupManager(dir)
		if err != nil {
			return err
		}
		if err := parent.Destroy(); err != nil {
			break // still used by another pod's cgroup
		}
	}
	return nil
}
