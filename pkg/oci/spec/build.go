package spec

import (
	"fmt"
	"maps"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Build returns the OCI runtime spec of the container described by in.
//
// Errors caused by the request or the image (a missing command, an unknown
// user, a relative mount path, a bad capability…) wrap
// errdefs.ErrInvalidArgument. Build keeps no state and is safe to call
// concurrently.
func Build(in Input) (*specs.Spec, error) {
	if in.Rootfs == "" || !filepath.IsAbs(in.Rootfs) {
		return nil, fmt.Errorf("container %q: rootfs %q is not an absolute path: %w", in.ID, in.Rootfs, errdefs.ErrInvalidArgument)
	}
	g, err := generate.New("linux")
	if err != nil {
		return nil, fmt.Errorf("new spec generator: %w", err)
	}
	// Specs are made for whichever host runs the container later; do not
	// filter capabilities by this host.
	g.HostSpecific = false
	g.SetRootPath(in.Rootfs)
	g.SetRootReadonly(in.Security.ReadonlyRootfs)

	// Each step fills one part of the spec; the order matters only for
	// seccomp, whose default profile depends on the capabilities.
	steps := []struct {
		name string
		fn   func(*generate.Generator, Input) error
	}{
		{"process", setProcess},
		{"user", setUser},
		{"namespaces", setNamespaces},
		{"mounts", setMounts},
		{"devices", setDevices},
		{"capabilities", setCapabilities},
		{"masked paths", setMaskedPaths},
		{"seccomp", setSeccomp},
		{"apparmor", setAppArmor},
		{"resources", setResources},
	}
	for _, s := range steps {
		if err := s.fn(&g, in); err != nil {
			return nil, fmt.Errorf("container %q: %s: %w", in.ID, s.name, err)
		}
	}

	if in.CgroupsPath != "" {
		g.SetLinuxCgroupsPath(in.CgroupsPath)
	}
	spec := g.Config
	if len(in.Sysctls) > 0 {
		spec.Linux.Sysctl = maps.Clone(in.Sysctls)
	}
	if len(in.Annotations) > 0 {
		spec.Annotations = maps.Clone(in.Annotations)
	}
	return spec, nil
}
