package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"
	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// setDevices adds the requested devices to linux.devices and allows them in
// the devices cgroup, after runtime-tools' deny-all rule.
//
// A privileged container instead gets every host device node (Host.Devices)
// and a cgroup rule allowing all devices, as Docker and containerd do; the
// requested devices are added on top (same path: the request wins).
func setDevices(g *generate.Generator, in Input) error {
	if in.Security.Privileged {
		host, err := in.Host.devices()
		if err != nil {
			return fmt.Errorf("list host devices: %w", err)
		}
		for _, d := range host {
			g.AddDevice(d)
		}
		g.AddLinuxResourcesDevice(true, "a", nil, nil, "rwm")
	}
	for _, d := range in.Devices {
		dev, access, err := requestDevice(d)
		if err != nil {
			return err
		}
		g.AddDevice(dev)
		if !in.Security.Privileged {
			g.AddLinuxResourcesDevice(true, dev.Type, &dev.Major, &dev.Minor, access)
		}
	}
	return nil
}

// requestDevice checks one requested device and reads its type and numbers
// from the host node.
func requestDevice(d Device) (specs.LinuxDevice, string, error) {
	if !filepath.IsAbs(d.ContainerPath) {
		return specs.LinuxDevice{}, "", fmt.Errorf("device %q: relative container path: %w", d.ContainerPath, errdefs.ErrInvalidArgument)
	}
	access := d.Permissions
	if access == "" {
		access = "rwm"
	}
	if err := validAccess(access); err != nil {
		return specs.LinuxDevice{}, "", fmt.Errorf("device %q: %w", d.ContainerPath, err)
	}
	dev, err := deviceFromPath(d.HostPath)
	if err != nil {
		return specs.LinuxDevice{}, "", fmt.Errorf("device %q: %w", d.ContainerPath, err)
	}
	dev.Path = filepath.Clean(d.ContainerPath)
	return dev, access, nil
}

// validAccess accepts a non-empty subset of "rwm", each letter once.
func validAccess(access string) error {
	seen := map[rune]bool{}
	for _, c := range access {
		if !strings.ContainsRune("rwm", c) || seen[c] {
			return fmt.Errorf("permissions %q: want a subset of \"rwm\": %w", access, errdefs.ErrInvalidArgument)
		}
		seen[c] = true
	}
	return nil
}

// deviceFromPath stats a host device node (following symlinks, as
// /dev/disk/by-id names are links).
func deviceFromPath(path string) (specs.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return specs.LinuxDevice{}, fmt.Errorf("host device %q: %v: %w", path, err, errdefs.ErrInvalidArgument)
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, fmt.Errorf("host path %q is not a device node: %w", path, errdefs.ErrInvalidArgument)
	}
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{
		Path:     path,
		Type:     typ,
		Major:    int64(unix.Major(uint64(st.Rdev))), //nolint:unconvert // Rdev's type differs by arch
		Minor:    int64(unix.Minor(uint64(st.Rdev))), //nolint:unconvert // Rdev's type differs by arch
		FileMode: &mode,
		UID:      &uid,
		GID:      &gid,
	}, nil
}

// walkDevices lists the device nodes under dir, skipping the directories a
// container has its own of (pts, shm, mqueue…), the console (runc sets up
// the container's) and anything that vanishes or is not a device.
func walkDevices(dir string) ([]specs.LinuxDevice, error) {
	var out []specs.LinuxDevice
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
				return nil
			}
			return err
		}
		if e.IsDir() {
			switch e.Name() {
			case "pts", "shm", "mqueue", "fd", ".lxc", ".lxd-mounts", ".udev":
				return fs.SkipDir
			}
			return nil
		}
		if e.Name() == "console" || e.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 {
			return nil
		}
		dev, err := deviceFromPath(path)
		if err != nil {
			return nil // raced away or changed; not worth failing the container
		}
		out = append(out, dev)
		return nil
	})
	return out, err
}
