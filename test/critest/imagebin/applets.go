package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// pgrep prints the PIDs of the processes whose command name (or, with -f, whole command
// line) matches the pattern, and exits 1 when there is none, like busybox pgrep.
func pgrep(args []string) int {
	full, exact := false, false
	pattern := ""
	for _, a := range args {
		switch {
		case a == "-f":
			full = true
		case a == "-x":
			exact = true
		case strings.HasPrefix(a, "-"):
			fmt.Fprintf(os.Stderr, "pgrep: unsupported option %s (this pgrep knows -f and -x)\n", a)
			return 2
		default:
			pattern = a
		}
	}
	if exact {
		pattern = "^(?:" + pattern + ")$"
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgrep:", err)
		return 2
	}
	self := os.Getpid()
	ents, _ := os.ReadDir("/proc")
	found := false
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		var b []byte
		if full {
			b, err = os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			b = []byte(strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " "))
		} else {
			b, err = os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
			b = []byte(strings.TrimSpace(string(b)))
		}
		if err != nil || !re.Match(b) {
			continue
		}
		fmt.Println(pid)
		found = true
	}
	if !found {
		return 1
	}
	return 0
}

// ipcFacility is one kind of System V IPC object as ipcs lists it.
type ipcFacility struct {
	flag, title, file string
	columns           []string // columns of /proc/sysvipc/<file> printed after key, id and owner
	id                string
}

var ipcFacilities = []ipcFacility{
	{"-q", "Message Queues", "msg", []string{"perms", "cbytes", "qnum"}, "msqid"},
	{"-m", "Shared Memory Segments", "shm", []string{"perms", "size", "nattch"}, "shmid"},
	{"-s", "Semaphore Arrays", "sem", []string{"perms", "nsems"}, "semid"},
}

// ipcs lists the IPC objects of the IPC namespace from /proc/sysvipc, in the layout of
// busybox and util-linux ipcs: all three kinds, or those named by -m, -q and -s.
func ipcs(args []string) int {
	want := map[string]bool{}
	for _, a := range args {
		switch a {
		case "-m", "-q", "-s":
			want[a] = true
		case "-a":
		default:
			fmt.Fprintf(os.Stderr, "ipcs: unsupported option %s (this ipcs knows -a, -m, -q and -s)\n", a)
			return 2
		}
	}
	for _, f := range ipcFacilities {
		if len(want) > 0 && !want[f.flag] {
			continue
		}
		b, err := os.ReadFile("/proc/sysvipc/" + f.file)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ipcs:", err)
			return 1
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		header := strings.Fields(lines[0])
		col := map[string]int{}
		for i, h := range header {
			col[h] = i
		}
		fmt.Printf("\n------ %s --------\n%-10s %-10s %-10s", f.title, "key", f.id, "owner")
		for _, c := range f.columns {
			fmt.Printf(" %-10s", c)
		}
		fmt.Println()
		for _, l := range lines[1:] {
			v := strings.Fields(l)
			if len(v) < len(header) {
				continue
			}
			key, _ := strconv.ParseInt(v[col["key"]], 10, 64)
			fmt.Printf("0x%08x %-10s %-10s", uint32(key), v[col[f.id]], v[col["uid"]])
			for _, c := range f.columns {
				fmt.Printf(" %-10s", v[col[c]]) // the kernel prints perms in octal already
			}
			fmt.Println()
		}
	}
	fmt.Println()
	return 0
}
