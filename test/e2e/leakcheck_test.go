package e2e

// The suite's own leak check: what the host has of the kinds a runtime can
// leak — namespace pins, overlay and shm mounts, monitors, cgroups, veths,
// NAT chains — is listed before the first test and after the last one, and
// anything new fails the run. Each daemon's own directories are also
// checked when its test ends (framework.NewDaemon).

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"
	"github.com/vishvananda/netlink"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// hostSnapshot lists, per kind, what the host has.
func hostSnapshot() map[string][]string {
	s := map[string][]string{}
	if infos, err := mountinfo.GetMounts(nil); err == nil {
		for _, m := range infos {
			switch {
			case m.FSType == "nsfs":
				s["nsfs mount"] = append(s["nsfs mount"], m.Mountpoint)
			case m.FSType == "overlay":
				s["overlay mount"] = append(s["overlay mount"], m.Mountpoint)
			case m.FSType == "tmpfs" && filepath.Base(m.Mountpoint) == "shm" && strings.Contains(m.Mountpoint, "/sandboxes/"):
				s["pod shm mount"] = append(s["pod shm mount"], m.Mountpoint)
			}
		}
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		args := strings.Split(string(b), "\x00")
		ours := len(args) > 1 && strings.HasPrefix(filepath.Base(args[0]), "cri-runtime") && (args[1] == "pause" || args[1] == "reap-exec")
		if len(args) > 0 && (filepath.Base(args[0]) == "conmon" || ours) {
			s["process"] = append(s["process"], e.Name()+": "+strings.Join(args, " "))
		}
	}
	for _, root := range []string{"/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
			continue
		}
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if strings.HasPrefix(d.Name(), "crirt-") {
				s["cgroup"] = append(s["cgroup"], p)
			}
			return nil
		})
		break
	}
	if links, err := netlink.LinkList(); err == nil {
		for _, l := range links {
			if l.Type() == "veth" {
				s["veth"] = append(s["veth"], l.Attrs().Name)
			}
		}
	}
	if out, err := exec.Command("iptables", "-t", "nat", "-S").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "-N CNI-") {
				s["nat chain"] = append(s["nat chain"], strings.TrimPrefix(line, "-N "))
			}
		}
	}
	for _, v := range s {
		sort.Strings(v)
	}
	return s
}

// foreignDaemons lists the test daemon directories that running processes
// name but that this test process did not make: another e2e run on the
// host, whose objects a host-wide comparison would count as ours.
func foreignDaemons() []string {
	seen := map[string]bool{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		for _, arg := range strings.Split(string(b), "\x00") {
			i := strings.Index(arg, "/crirt-")
			if i < 0 {
				continue
			}
			dir := arg[:i+len("/crirt-")]
			rest := arg[i+len("/crirt-"):]
			if j := strings.IndexByte(rest, '/'); j >= 0 {
				rest = rest[:j]
			}
			dir += rest
			if !framework.OwnDaemonDir(dir) && !strings.HasPrefix(rest, "e2e-") {
				seen[dir] = true
			}
		}
	}
	var out []string
	for d := range seen {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// newSince reports what after has that before had not.
func newSince(before, after map[string][]string) []string {
	var out []string
	for kind, items := range after {
		for _, it := range items {
			if !slices.Contains(before[kind], it) {
				out = append(out, fmt.Sprintf("%s %s", kind, it))
			}
		}
	}
	sort.Strings(out)
	return out
}
