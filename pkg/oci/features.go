package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"

	"go.podman.io/storage/pkg/idmap"
	"go.podman.io/storage/pkg/idtools"
	"golang.org/x/sys/unix"
)

// Features are the optional capabilities of one OCI runtime on this host,
// which Status advertises per RuntimeClass handler: the kubelet and critest
// only use a feature a handler claims.
type Features struct {
	// RecursiveReadOnlyMounts: the runtime knows the "rro" mount option and
	// the kernel has mount_setattr(2) (Linux 5.12) to apply it.
	RecursiveReadOnlyMounts bool `json:"recursiveReadOnlyMounts"`
	// UserNamespaces: the runtime joins user namespaces and makes idmapped
	// mounts, and the kernel can idmap mounts of the daemon's root, where
	// the containers' filesystems are.
	UserNamespaces bool `json:"userNamespaces"`
}

// runtimeFeatures is the part of `runc features` (the OCI runtime features
// document) we read.
type runtimeFeatures struct {
	MountOptions []string `json:"mountOptions"`
	Linux        struct {
		Namespaces      []string `json:"namespaces"`
		MountExtensions struct {
			IDMap struct {
				Enabled bool `json:"enabled"`
			} `json:"idmap"`
		} `json:"mountExtensions"`
	} `json:"linux"`
}

// ProbeFeatures asks the OCI runtime at path what it supports and checks the
// kernel for what those features need, idmapped mounts on dir. A runtime
// that cannot say (older than the features command, or missing) supports
// none of them.
func ProbeFeatures(ctx context.Context, path, dir string) Features {
	out, err := exec.CommandContext(ctx, path, "features").Output()
	if err != nil {
		return Features{}
	}
	var rf runtimeFeatures
	if err := json.Unmarshal(out, &rf); err != nil {
		return Features{}
	}
	return Features{
		RecursiveReadOnlyMounts: slices.Contains(rf.MountOptions, "rro") && kernelHasMountSetattr(),
		UserNamespaces: slices.Contains(rf.Linux.Namespaces, "user") && rf.Linux.MountExtensions.IDMap.Enabled &&
			canIDMap(dir) == nil,
	}
}

// canIDMap tries an idmapped mount of dir: a detached clone of it, given
// the mapping of a throwaway user namespace, never attached anywhere.
func canIDMap(dir string) error {
	tree, err := unix.OpenTree(-1, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(tree)
	m := []idtools.IDMap{{ContainerID: 0, HostID: 65536, Size: 65536}}
	pid, cleanup, err := idmap.CreateUsernsProcess(m, m)
	if err != nil {
		return err
	}
	defer cleanup()
	userns, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", pid))
	if err != nil {
		return err
	}
	defer userns.Close()
	return unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns.Fd())})
}

// kernelHasMountSetattr calls mount_setattr(2) with a bad descriptor: a
// kernel that has the call answers EBADF, one that lacks it ENOSYS.
func kernelHasMountSetattr() bool {
	err := unix.MountSetattr(-1, "", 0, &unix.MountAttr{})
	return !errors.Is(err, unix.ENOSYS)
}
