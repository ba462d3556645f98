package helper

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ReapExec runs "runc exec --detach" (args[1:], which must write its
// process's PID to the file args[0]) as a child subreaper: the exec'd
// process becomes our child once runc has gone, so we can wait for it —
// and only for it: background children it started keep running, reparented
// to init when we exit — and exit with its exit code (128+signal when
// killed). Started by pkg/oci for ExecSync and Exec, never by users.
func ReapExec(args []string, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintln(stderr, ReapExecPrefix+err.Error())
		return ReapExecFailed
	}
	if len(args) < 2 {
		return fail(errors.New("usage: reap-exec PIDFILE RUNC ARGS..."))
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fail(fmt.Errorf("become a subreaper: %w", err))
	}
	runc := exec.Command(args[1], args[2:]...)
	runc.Stdin, runc.Stdout, runc.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := runc.Run(); err != nil {
		return fail(fmt.Errorf("runc exec failed: %w", err))
	}
	b, err := os.ReadFile(args[0])
	if err != nil {
		return fail(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return fail(fmt.Errorf("bad pid file %s: %q", args[0], b))
	}
	for {
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return fail(fmt.Errorf("wait for the exec'd process %d: %w", pid, err))
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ws.ExitStatus()
	}
}
