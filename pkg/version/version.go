// Package version is the daemon's own version, set at link time.
package version

import "runtime/debug"

// Version is set with -ldflags "-X github.com/cri-runtime/cri-runtime/pkg/version.Version=...".
var Version = ""

// String returns Version, else the module version recorded by the Go
// toolchain, else "devel".
func String() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
