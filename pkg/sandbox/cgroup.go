package sandbox

import (
	"fmt"
	"path/filepath"
	"strings"

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
