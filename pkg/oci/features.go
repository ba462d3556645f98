package oci

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"slices"

	"golang.org/x/sys/unix"
)

// Features are the optional capabilities of one OCI runtime on this host,
// which Status advertises per RuntimeClass handler: the kubelet and critest
// only use a feature a handler claims.
type Features struct {
	// RecursiveReadOnlyMounts: the runtime knows the "rro" mount option and
	// the kernel has mount_setattr(2) (Linux 5.12) to apply it.
	RecursiveReadOnlyMounts bool `json:"recursiveReadOnlyMounts"`
}

// runtimeFeatures is the part of `runc features` (the OCI runtime features
// document) we read.
type runtimeFeatures struct {
	MountOptions []string `json:"mountOptions"`
}

// ProbeFeatures asks the OCI runtime at path what it supports and checks the
// kernel for what those features need. A runtime that cannot say (older
// than the features command, or missing) supports none of them.
func ProbeFeatures(ctx context.Context, path string) Features {
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
	}
}

// kernelHasMountSetattr calls mount_setattr(2) with a bad descriptor: a
// kernel that has the call answers EBADF, one that lacks it ENOSYS.
func kernelHasMountSetattr() bool {
	err := unix.MountSetattr(-1, "", 0, &unix.MountAttr{})
	return !errors.Is(err, unix.ENOSYS)
}
