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
// not exist yet, and reports whether it did. The kubelet normally creates
// pod cgroups itself; then we leave them to it.
func ensureCgroup(path string) (bool, error) {
	if cgroupExists(path) {
		return false, nil
	}
	m, err := cgroupManager(path)
	if err != nil {
		return false, fmt.Errorf("cgroup %s: %w", path, err)
	}
	if err := m.Apply(-1); err != nil {
		_ = m.Destroy()
		return false, fmt.Errorf("create cgroup %s: %w", path, err)
	}
	return true, nil
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

// removeCgroup removes a cgroup we created; gone already is fine.
func removeCgroup(path string) error {
	m, err := cgroupManager(path)
	if err != nil {
		return err
	}
	if err := m.Destroy(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove cgroup %s: %w", path, err)
	}
	return nil
}
