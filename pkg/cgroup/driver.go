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

// PlaceMonitor moves the monitor (conmon) of container id, in the pod
// whose cgroup is pod, out of the daemon's cgroup: into a leaf of the pod's
// cgroup shared by the pod's monitors with cgroupfs, into a scope of its
// own in the pod's slice with systemd. Monitors then outlive a restart of
// the daemon's service without being its processes, and count as the
// pod's, as CRI-O's conmon_cgroup = "pod" does.
func (d Driver) PlaceMonitor(pod, id string, pid int) error {
	if d.systemd {
		return MoveToScope(filepath.Base(pod), "crirt-conmon", id, pid)
	}
	return Move(filepath.Join(pod, monitorLeaf), pid)
}

// monitorLeaf is the cgroupfs leaf of a pod's monitors.
const monitorLeaf = "crirt-conmon"

// RemovePodLeaves removes the leaves the daemon made in a pod's cgroup
// (its init's and its monitors'), once the pod is gone: the pod's cgroup
// may be the kubelet's, which removes it, but not what is inside it.
func (d Driver) RemovePodLeaves(pod string) error {
	if d.systemd {
		return nil // scopes go with their last process
	}
	for _, leaf := range []string{filepath.Join(pod, monitorLeaf), PodInit(pod)} {
		if leaf == pod || !Exists(leaf) {
			continue
		}
		m, err := manage(leaf)
		if err != nil {
			return err
		}
		if err := m.Destroy(); err != nil {
			return fmt.Errorf("remove cgroup %s: %w", leaf, err)
		}
	}
	return nil
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
