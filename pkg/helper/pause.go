package helper

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Pause is the init of a pod whose containers share one PID namespace
// (started by pkg/sandbox, never by users). It first joins the pod's cgroup
// (when given one; on cgroup v2 a leaf "pause" under it, as
// cgroup.PodInit names it). As PID 1 it must reap the orphans the
// containers leave; otherwise it waits, using no CPU, until it is told to
// stop.
func Pause(ctx context.Context, cgroupPath string) error {
	if cgroupPath != "" {
		if err := joinCgroup(cgroupPath); err != nil {
			return err
		}
	}
	children := make(chan os.Signal, 16)
	signal.Notify(children, syscall.SIGCHLD)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-children:
			for {
				var ws syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
		}
	}
}

// joinCgroup puts this process into the cgroup at path (cgroupfs form,
// e.g. /kubepods/pod-x): on cgroup v2 into its leaf "pause", which it
// creates; on v1 into that path in every mounted cgroup v1 hierarchy,
// where the daemon created the pod's cgroup. It is what pkg/cgroup's
// manager does for this one case, without its dependencies (D-Bus,
// systemd), which would make this process many times bigger.
func joinCgroup(path string) error {
	pid := []byte(strconv.Itoa(os.Getpid()))
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		dir := filepath.Join("/sys/fs/cgroup", path, "pause")
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create cgroup %s: %w", dir, err)
		}
		return writeProcs(dir, pid)
	}
	mounts, err := v1Hierarchies()
	if err != nil {
		return err
	}
	joined := 0
	for _, m := range mounts {
		dir := filepath.Join(m, path)
		if _, err := os.Stat(dir); err != nil {
			continue // a hierarchy the pod's cgroup is not in
		}
		if err := writeProcs(dir, pid); err != nil {
			return err
		}
		joined++
	}
	if joined == 0 {
		return fmt.Errorf("join cgroup %s: it exists in no cgroup hierarchy", path)
	}
	return nil
}

func writeProcs(dir string, pid []byte) error {
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), pid, 0); err != nil {
		return fmt.Errorf("join cgroup %s: %w", dir, err)
	}
	return nil
}

// v1Hierarchies lists the mount points of the cgroup v1 hierarchies whose
// root is the hierarchy's root (those of our cgroup namespace).
func v1Hierarchies() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseHierarchies(f)
}

// parseHierarchies is v1Hierarchies on the mountinfo text in r.
func parseHierarchies(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source super
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, fl := range fields {
			if fl == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+1 >= len(fields) || fields[sep+1] != "cgroup" || fields[3] != "/" {
			continue
		}
		out = append(out, unescapeMount(fields[4]))
	}
	return out, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
