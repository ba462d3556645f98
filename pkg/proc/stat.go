// Package proc reads what the daemon needs to know of a process from /proc.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Stat is the part of /proc/<pid>/stat the daemon uses.
type Stat struct {
	State byte // 'R', 'S', 'Z'…
	PPID  int
	// StartTicks is when the process started, in clock ticks after boot:
	// with the PID it identifies a process, since a PID may be reused.
	StartTicks uint64
}

// ReadStat reads /proc/<pid>/stat; a process that is gone (reaped) is an
// error wrapping os.ErrNotExist.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, err
	}
	return parseStat(b)
}

// parseStat parses a stat line. The command name (field 2) is in
// parentheses and may hold spaces or parentheses itself; the fields are
// counted from the last ")".
func parseStat(b []byte) (Stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, errors.New("proc stat: no command name")
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3 (state)
	if len(f) < 20 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("proc stat: %d fields after the command name", len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return Stat{}, fmt.Errorf("proc stat: ppid %q: %w", f[1], err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64) // field 22
	if err != nil {
		return Stat{}, fmt.Errorf("proc stat: starttime %q: %w", f[19], err)
	}
	return Stat{State: f[0][0], PPID: ppid, StartTicks: start}, nil
}
