package spec

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Real-time signals as glibc numbers them (it keeps 32 and 33 for itself),
// which is what "SIGRTMIN+3" means to runc, Docker and systemd.
const (
	sigRTMin = 34
	sigRTMax = 64
)

// signalAliases are other names of signals x/sys/unix names differently.
var signalAliases = map[string]string{
	"SIGIOT":  "SIGABRT",
	"SIGPOLL": "SIGIO",
	"SIGCLD":  "SIGCHLD",
}

// StopSignal picks the signal that stops a container: the request's, else
// the image's STOPSIGNAL, else SIGTERM. Either may be a name with or
// without "SIG" in any case ("SIGTERM", "term"), a number ("15"), or a
// real-time signal ("SIGRTMIN+3", "RTMAX-1"). The result is the canonical
// name ("SIGTERM", "SIGRTMIN+3"); anything else wraps
// errdefs.ErrInvalidArgument.
func StopSignal(requested string, image string) (string, error) {
	s := strings.TrimSpace(requested)
	if s == "" {
		s = strings.TrimSpace(image)
	}
	if s == "" {
		return "SIGTERM", nil
	}
	num, err := parseSignal(s)
	if err != nil {
		return "", err
	}
	return signalName(num), nil
}

// parseSignal turns a signal spelling into its number.
func parseSignal(s string) (int, error) {
	invalid := fmt.Errorf("stop signal %q: unknown signal: %w", s, errdefs.ErrInvalidArgument)
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > sigRTMax || (n > 31 && n < sigRTMin) {
			return 0, invalid
		}
		return n, nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if alias, ok := signalAliases[name]; ok {
		name = alias
	}
	if n, ok := parseRealtime(name); ok {
		return n, nil
	}
	if n := unix.SignalNum(name); n != 0 {
		return int(n), nil
	}
	return 0, invalid
}

// parseRealtime reads "SIGRTMIN", "SIGRTMIN+n", "SIGRTMAX" and
// "SIGRTMAX-n".
func parseRealtime(name string) (int, bool) {
	var base, sign int
	var rest string
	switch {
	case strings.HasPrefix(name, "SIGRTMIN"):
		base, sign, rest = sigRTMin, 1, strings.TrimPrefix(name, "SIGRTMIN")
	case strings.HasPrefix(name, "SIGRTMAX"):
		base, sign, rest = sigRTMax, -1, strings.TrimPrefix(name, "SIGRTMAX")
	default:
		return 0, false
	}
	if rest == "" {
		return base, true
	}
	op := "+"
	if sign < 0 {
		op = "-"
	}
	off, err := strconv.Atoi(strings.TrimPrefix(rest, op))
	if !strings.HasPrefix(rest, op) || err != nil || off < 0 {
		return 0, false
	}
	n := base + sign*off
	if n < sigRTMin || n > sigRTMax {
		return 0, false
	}
	return n, true
}

// signalName is the canonical name of a valid signal number; real-time
// signals are counted from SIGRTMIN.
func signalName(n int) string {
	switch {
	case n == sigRTMin:
		return "SIGRTMIN"
	case n == sigRTMax:
		return "SIGRTMAX"
	case n > sigRTMin && n < sigRTMax:
		return "SIGRTMIN+" + strconv.Itoa(n-sigRTMin)
	}
	return unix.SignalName(syscall.Signal(n))
}
