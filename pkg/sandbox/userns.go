package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// IDMap maps Size IDs from ContainerID inside a user namespace to HostID
// on the node.
type IDMap struct {
	ContainerID uint32 `json:"containerID"`
	HostID      uint32 `json:"hostID"`
	Size        uint32 `json:"size"`
}

// UserNS is a pod's own user namespace (the kubelet's hostUsers: false):
// the kubelet chooses the ranges. Root in the pod is HostID on the node.
type UserNS struct {
	UIDs []IDMap `json:"uids"`
	GIDs []IDMap `json:"gids"`
}

// Validate checks what the kernel and the CRI contract need: one mapping
// each for users and groups, of at least one ID, that maps container ID 0.
func (u *UserNS) Validate() error {
	for _, m := range []struct {
		kind string
		maps []IDMap
	}{{"uid", u.UIDs}, {"gid", u.GIDs}} {
		if len(m.maps) != 1 {
			return fmt.Errorf("user namespace: want exactly one %s mapping, have %d: %w", m.kind, len(m.maps), errdefs.ErrInvalidArgument)
		}
		r := m.maps[0]
		if r.ContainerID != 0 {
			return fmt.Errorf("user namespace: the %s mapping must map container ID 0, not start at %d: %w", m.kind, r.ContainerID, errdefs.ErrInvalidArgument)
		}
		if r.Size == 0 || uint64(r.HostID)+uint64(r.Size) > 1<<32-1 {
			return fmt.Errorf("user namespace: %s mapping %d-%d of size %d does not fit: %w", m.kind, r.ContainerID, r.HostID, r.Size, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

func sysProcMaps(maps []IDMap) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, 0, len(maps))
	for _, m := range maps {
		out = append(out, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
	}
	return out
}

// userNS is the user namespace kind; pods that have one pin it at ns/user.
var userNS = nsKind{"user", unix.CLONE_NEWUSER}

// createUserNamespaces makes the pod's user namespace with the other
// namespaces (kinds) owned by it, so that what the pod's root does to its
// network or hostname is checked against the pod's user namespace, and
// pins them all at dir/<name>. A Go program has many threads and cannot
// unshare a user namespace, so a child does: our own binary's "pause",
// started in the new namespaces with the kubelet's mappings. With keep it
// stays as the pod's init (kinds then include the PID namespace; the caller
// moves it into the pod's cgroup, which it cannot join itself from inside
// the user namespace); otherwise it is killed once the pins hold the
// namespaces. inside then runs on a thread of ours joined to the new
// namespaces (except the user one: we hold every capability over it).
func (m *Manager) createUserNamespaces(sb *Sandbox, dir string, kinds []nsKind, keep bool, inside func() error) (retErr error) {
	if m.opts.PauseBinary == "" {
		return errNoPauseBinary
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	flags := userNS.flag
	for _, k := range kinds {
		flags |= k.flag
	}
	u := sb.Config.UserNS
	cmd := exec.Command(m.opts.PauseBinary, "pause")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.Env = pauseEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  uintptr(flags),
		UidMappings: sysProcMaps(u.UIDs), GidMappings: sysProcMaps(u.GIDs),
		// The containers' processes set their supplementary groups.
		GidMappingsEnableSetgroups: true,
		Setsid:                     true,
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start a process in the pod's new user namespace: %w", err)
	}
	pid := cmd.Process.Pid
	all := append([]nsKind{userNS}, kinds...)
	defer func() {
		if retErr != nil || !keep {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if retErr != nil {
			for _, k := range all {
				_ = unpin(filepath.Join(dir, k.name))
			}
		}
	}()
	if keep {
		go func() { _ = cmd.Wait() }() // reap it when it ends while we run
		sb.PausePID, sb.PauseStart = pid, processStart(pid)
	}
	for _, k := range all {
		if err := pin(fmt.Sprintf("/proc/%d/ns/%s", pid, k.name), filepath.Join(dir, k.name)); err != nil {
			return err
		}
	}
	paths := map[string]string{}
	for _, k := range kinds {
		if k != pidNS {
			paths[k.name] = filepath.Join(dir, k.name)
		}
	}
	if inside == nil || len(paths) == 0 {
		return nil
	}
	return inNamespaces(paths, inside)
}
