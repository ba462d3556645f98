//go:build tools

// Package bench pins containerd, which `make bench-compare` builds and runs
// side by side with our daemon. It is a module of its own so that
// containerd's dependencies never mix with the daemon's.
package bench

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
)
