package framework

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// leftBehind lists what of the daemon in dir is still on the host once it
// has stopped: mounts under dir (but the bind mount of the store's driver
// home on itself, which containers/storage keeps and which goes with the
// directory) and processes naming dir (monitors, runc, helpers).
func leftBehind(dir string) (mounts []string, procs map[int]string) {
	infos, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	for _, m := range infos {
		if m.FSType != "overlay" && strings.HasSuffix(m.Mountpoint, "/storage/overlay") {
			continue
		}
		mounts = append(mounts, m.Mountpoint+" ("+m.FSType+")")
	}
	sort.Strings(mounts)
	procs = map[int]string{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if cmd := strings.ReplaceAll(string(b), "\x00", " "); strings.Contains(cmd, dir+"/") {
			procs[pid] = cmd
		}
	}
	return mounts, procs
}

// clearLeftBehind kills what leftBehind found and detaches the mounts, so
// that one leaking test does not spoil the next ones.
func clearLeftBehind(dir string) {
	_, procs := leftBehind(dir)
	for pid := range procs {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	infos, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	sort.Slice(infos, func(i, j int) bool { return len(infos[i].Mountpoint) > len(infos[j].Mountpoint) })
	for _, m := range infos {
		_ = unix.Unmount(m.Mountpoint, unix.MNT_DETACH)
	}
}

// leakReport describes what leftBehind found, "" for nothing.
func leakReport(dir string) string {
	mounts, procs := leftBehind(dir)
	if len(mounts) == 0 && len(procs) == 0 {
		return ""
	}
	var b strings.Builder
	for _, m := range mounts {
		fmt.Fprintf(&b, "\n  mount %s", m)
	}
	for pid, cmd := range procs {
		fmt.Fprintf(&b, "\n  process %d: %s", pid, cmd)
	}
	return b.String()
}

var (
	dirsMu sync.Mutex
	dirs   = map[string]bool{}
)

// OwnDaemonDir tells whether dir was made by NewDaemon in this process.
func OwnDaemonDir(dir string) bool {
	dirsMu.Lock()
	defer dirsMu.Unlock()
	return dirs[dir]
}
