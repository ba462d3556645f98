package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// hostShm is the host's /dev/shm, bound into host-IPC containers.
const hostShm = "/dev/shm"

// setMounts replaces the generator's mounts with, in order: the kernel
// filesystems every container gets, the pod's /etc/hosts, /etc/hostname,
// /etc/resolv.conf and /dev/shm, then the request's mounts (parents before
// children). A request mount at a path drops the default mounts at that
// path and below it, so a user's /etc/hosts replaces the pod's.
//
// It also sets linux.rootfsPropagation when a mount needs it: rshared for
// an rshared mount, rslave for an rslave one, left to the runtime otherwise.
func setMounts(g *generate.Generator, in Input) error {
	req, err := requestMounts(in.Mounts)
	if err != nil {
		return err
	}
	if u := in.UserNS; u != nil {
		// Volumes keep their owners as the pod sees them: root on the node
		// is root in the pod (idmapped mounts, done by the runtime).
		for i := range req {
			req[i].UIDMappings = append([]specs.LinuxIDMapping(nil), u.UIDs...)
			req[i].GIDMappings = append([]specs.LinuxIDMapping(nil), u.GIDs...)
		}
	}
	defaults := append(systemMounts(in.Security.Privileged), podMounts(in)...)
	defaults = slices.DeleteFunc(defaults, func(d specs.Mount) bool {
		return slices.ContainsFunc(req, func(m specs.Mount) bool { return within(d.Destination, m.Destination) })
	})

	g.ClearMounts()
	g.Config.Mounts = append(defaults, req...)

	switch {
	case slices.ContainsFunc(in.Mounts, func(m Mount) bool { return m.Propagation == RShared }):
		return g.SetLinuxRootPropagation("rshared")
	case slices.ContainsFunc(in.Mounts, func(m Mount) bool { return m.Propagation == RSlave }):
		return g.SetLinuxRootPropagation("rslave")
	}
	return nil
}

// within says whether path is dir or lies below it.
func within(path, dir string) bool {
	return path == dir || dir == "/" || strings.HasPrefix(path, dir+"/")
}

// systemMounts are the kernel filesystems of a container. /sys and the
// cgroup filesystem are read-only unless the container is privileged.
func systemMounts(privileged bool) []specs.Mount {
	sysMode := "ro"
	if privileged {
		sysMode = "rw"
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", sysMode}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", sysMode}},
	}
}

// podMounts binds the pod's files. /etc/hosts, /etc/hostname and
// /etc/resolv.conf follow the rootfs' read-only flag; /dev/shm stays
// writable. Without a pod shm (host IPC) the host's /dev/shm is bound.
func podMounts(in Input) []specs.Mount {
	mode := "rw"
	if in.Security.ReadonlyRootfs {
		mode = "ro"
	}
	var out []specs.Mount
	for _, f := range []struct{ dest, src string }{
		{"/etc/hosts", in.HostsPath},
		{"/etc/hostname", in.HostnamePath},
		{"/etc/resolv.conf", in.ResolvConfPath},
	} {
		if f.src != "" {
			out = append(out, bindMount(f.dest, f.src, "rprivate", mode))
		}
	}
	shm := in.ShmPath
	if shm == "" {
		shm = hostShm
	}
	out = append(out, bindMount("/dev/shm", shm, "rprivate", "rw", "nosuid", "nodev", "noexec"))
	return out
}

func bindMount(dest, src string, opts ...string) specs.Mount {
	return specs.Mount{
		Destination: dest,
		Type:        "bind",
		Source:      src,
		Options:     append([]string{"rbind"}, opts...),
	}
}

// requestMounts validates and converts the request's mounts, sorted so that
// a parent directory is mounted before the mounts inside it. The only host
// access is a stat of each source, which must exist.
func requestMounts(mounts []Mount) ([]specs.Mount, error) {
	out := make([]specs.Mount, 0, len(mounts))
	seen := map[string]bool{}
	for _, m := range mounts {
		if !filepath.IsAbs(m.ContainerPath) {
			return nil, fmt.Errorf("mount %q: relative container path: %w", m.ContainerPath, errdefs.ErrInvalidArgument)
		}
		dest := filepath.Clean(m.ContainerPath)
		if seen[dest] {
			return nil, fmt.Errorf("mount %q: container path mounted twice: %w", dest, errdefs.ErrInvalidArgument)
		}
		seen[dest] = true
		if m.HostPath == "" {
			return nil, fmt.Errorf("mount %q: empty host path: %w", dest, errdefs.ErrInvalidArgument)
		}
		if _, err := os.Stat(m.HostPath); err != nil {
			return nil, fmt.Errorf("mount %q: host path %q: %v: %w", dest, m.HostPath, err, errdefs.ErrInvalidArgument)
		}
		prop, err := propagationOption(m.Propagation)
		if err != nil {
			return nil, fmt.Errorf("mount %q: %w", dest, err)
		}
		mode := "rw"
		if m.Readonly {
			mode = "ro"
		}
		opts := []string{prop, mode}
		if m.RecursiveReadOnly {
			// api.proto: recursive read-only needs a read-only mount with
			// private propagation, or the runtime must fail.
			if !m.Readonly {
				return nil, fmt.Errorf("mount %q: recursive read-only requires readonly: %w", dest, errdefs.ErrInvalidArgument)
			}
			if m.Propagation != Private {
				return nil, fmt.Errorf("mount %q: recursive read-only requires private propagation, not %s: %w", dest, prop, errdefs.ErrInvalidArgument)
			}
			opts = append(opts, "rro")
		}
		opts = append(opts, m.Options...)
		out = append(out, bindMount(dest, m.HostPath, opts...))
	}
	slices.SortStableFunc(out, func(a, b specs.Mount) int {
		return pathDepth(a.Destination) - pathDepth(b.Destination)
	})
	return out, nil
}

func pathDepth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

func propagationOption(p Propagation) (string, error) {
	switch p {
	case Private:
		return "rprivate", nil
	case RSlave:
		return "rslave", nil
	case RShared:
		return "rshared", nil
	}
	return "", fmt.Errorf("unknown propagation %d: %w", p, errdefs.ErrInvalidArgument)
}
