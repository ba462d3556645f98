package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/safego"
)

// nsKind is a namespace a pod can own: its name in /proc/<pid>/ns and its
// clone flag.
type nsKind struct {
	name string
	flag int
}

var (
	netNS = nsKind{"net", unix.CLONE_NEWNET}
	ipcNS = nsKind{"ipc", unix.CLONE_NEWIPC}
	utsNS = nsKind{"uts", unix.CLONE_NEWUTS}
)

// createNamespaces makes new namespaces of the given kinds and pins each by
// bind-mounting it at dir/<name>, so it lives with no process in it. inside
// then runs in the new namespaces (set the hostname, write sysctls). The work
// happens on an OS thread of its own that exits afterwards, so no other
// goroutine ever runs in the pod's namespaces. On error nothing is left
// pinned.
func createNamespaces(dir string, kinds []nsKind, inside func() error) (retErr error) {
	if len(kinds) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		// The thread is never unlocked: when this goroutine returns, Go
		// ends the thread and the namespaces it entered go with it.
		runtime.LockOSThread()
		done <- safego.Call(nil, "pin namespaces", func() error {
			flags := 0
			for _, k := range kinds {
				flags |= k.flag
			}
			if err := unix.Unshare(flags); err != nil {
				return fmt.Errorf("unshare namespaces: %w", err)
			}
			tid := unix.Gettid()
			for _, k := range kinds {
				if err := pin(fmt.Sprintf("/proc/self/task/%d/ns/%s", tid, k.name), filepath.Join(dir, k.name)); err != nil {
					return err
				}
			}
			if inside != nil {
				return inside()
			}
			return nil
		})
	}()
	if err := <-done; err != nil {
		for _, k := range kinds {
			_ = unpin(filepath.Join(dir, k.name))
		}
		return err
	}
	return nil
}

// pin bind-mounts the namespace file src onto a new empty file at target.
func pin(src, target string) error {
	f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("create namespace pin %s: %w", target, err)
	}
	f.Close()
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		os.Remove(target)
		return fmt.Errorf("pin namespace %s at %s: %w", src, target, err)
	}
	return nil
}

// unpin unmounts and removes a pin; a pin that is not there is not an error.
func unpin(target string) error {
	if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unpin namespace %s: %w", target, err)
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove namespace pin %s: %w", target, err)
	}
	return nil
}

// inNamespaces runs fn on a throwaway OS thread joined to the namespaces
// pinned at paths (by kind name).
func inNamespaces(paths map[string]string, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		done <- safego.Call(nil, "in namespaces", func() error {
			for name, p := range paths {
				f, err := os.Open(p)
				if err != nil {
					return fmt.Errorf("open %s namespace: %w", name, err)
				}
				err = unix.Setns(int(f.Fd()), 0)
				f.Close()
				if err != nil {
					return fmt.Errorf("enter %s namespace %s: %w", name, p, err)
				}
			}
			return fn()
		})
	}()
	return <-done
}

// loopbackUp brings up "lo" in the calling thread's network namespace, over
// netlink: what the CNI loopback plugin does, without starting a process.
func loopbackUp() error {
	h, err := netlink.NewHandle() // its socket belongs to this thread's netns
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find loopback: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bring up loopback: %w", err)
	}
	return nil
}
