//go:build tools

// Package tools pins the versions of the test tools the Makefile builds
// (critest and crictl from cri-tools) in a module of their own, so that
// their dependencies never mix with the daemon's.
package tools

import (
	_ "sigs.k8s.io/cri-tools/cmd/crictl"
	_ "sigs.k8s.io/cri-tools/cmd/critest"
)
