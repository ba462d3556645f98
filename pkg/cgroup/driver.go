package cgroup

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Driver is who makes the cgroups of pods and containers: the daemon
// itself through cgroupfs, or systemd, whose slices hold pods and whose
// scopes hold containers (runc asks for them over D-Bus). It is the
// kubelet's --cgroup-driver, which must match. The zero value is Cgroupfs.
// Every difference between the two lives in this type's methods.
type Driver struct{ systemd bool }

var (
	// Cgroupfs: cgroups are directories the daemon and runc make.
	Cgroupfs = Driver{}
	// Systemd: cgroups are systemd units.
	Systemd = Driver{systemd: true}
)

// DriverNamed returns the driver of this name, as configured.
func DriverNamed(name string) (Driver, error) {
	switch name {
	case "cgroupfs":
		return Cgroupfs, nil
	case "systemd":
		return Systemd, nil
	}
	return Driver{}, fmt.Errorf("cgroup driver %q is not cgroupfs or systemd: %w", name, errdefs.ErrInvalidArgument)
}

func (d Driver) String() string {
	if d.systemd {
		return "systemd"
	}
	return "cgroupfs"
}

// IsSystemd reports whether systemd makes the cgroups (runc's
// --systemd-cgroup).
func (d Driver) IsSystemd() bool { return d.systemd }

// MakesPodCgroups reports whether the daemon creates and removes the pods'
// cgroups itself. A systemd slice is made by systemd with the first unit in
// it and belongs to whoever named it (the kubelet).
func (d Driver) MakesPodCgroups() bool { return !d.systemd }

// PodCgroup turns a pod's cgroup_parent into the cgroupfs path of its
// cgroup. With systemd the parent is a slice name
// ("kubepods-burstable-pod1.slice"), nested by its dashes; with cgroupfs it
// is a path. An empty parent gets a default of our own.
func (d Driver) PodCgroup(parent, podID string) (string, error) {
	if d.systemd {
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
	if strings.Contains(parent, "..") {
		return "", fmt.Errorf("cgroup_parent %q must not contain '..': %w", parent, errdefs.ErrInvalidArgument)
	}
	return filepath.Clean("/" + parent), nil
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

// ContainerCgroup returns, for container id in the pod whose cgroup is
// pod, the spec's linux.cgroupsPath (what runc is told) and the cgroupfs
// path the container's cgroup gets (where its stats are read).
func (d Driver) ContainerCgroup(pod, id string) (specPath, fsPath string) {
	if d.systemd {
		// runc's systemd form is slice:prefix:name, the unit prefix-name.scope.
		return filepath.Base(pod) + ":crirt:" + id, filepath.Join(pod, "crirt-"+id+".scope")
	}
	p := filepath.Join(pod, "crirt-"+id)
	return p, p
}

// PlacePodInit moves the init of a pod that shares its PID namespace
// (started by the daemon, so in the daemon's cgroup) into the pod's
// cgroup: a leaf of it with cgroupfs (PodInit), a scope of its own in the
// pod's slice with systemd, where it does not count as the service's.
func (d Driver) PlacePodInit(pod, podID string, pid int) error {
	if d.systemd {
		return MoveToScope(filepath.Base(pod), "crirt-pause", podID, pid)
	}
	return Move(PodInit(pod), pid)
}
