// Package apparmor is the node's AppArmor as the daemon uses it: whether the
// kernel enforces it, which profiles the kernel has loaded, and the default
// profile that containers asking for RuntimeDefault run under, which the
// daemon writes and loads with apparmor_parser.
package apparmor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// DefaultProfile is the name of the profile RuntimeDefault selects.
const DefaultProfile = "cri-runtime-default"

// Where the kernel publishes AppArmor's state. Variables only so that tests
// can point them at files of their own.
var (
	enabledFile  = "/sys/module/apparmor/parameters/enabled"
	profilesFile = "/sys/kernel/security/apparmor/profiles"
)

// Enabled reports whether the kernel enforces AppArmor: the same test runc
// makes before it applies a profile, and the kubelet before it admits a pod
// that names one.
func Enabled() bool {
	b, err := os.ReadFile(enabledFile)
	return err == nil && len(b) > 0 && b[0] == 'Y'
}

// Loaded reports whether the kernel has a profile of this name loaded.
func Loaded(name string) (bool, error) {
	f, err := os.Open(profilesFile)
	if err != nil {
		return false, fmt.Errorf("list loaded AppArmor profiles: %w", err)
	}
	defer f.Close()
	// One line per profile: "name (mode)".
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if n, _, _ := strings.Cut(sc.Text(), " ("); n == name {
			return true, nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("list loaded AppArmor profiles: %w", err)
	}
	return false, nil
}

// Host is a node with AppArmor. It loads the default profile on demand and
// answers which profiles are loaded. Safe for concurrent use.
type Host struct {
	parser string // apparmor_parser, "" when not found

	mu sync.Mutex
	// lastErr is why the default profile could not be loaded, for Status.
	lastErr error
}

// NewHost returns the node's AppArmor, or nil when the kernel does not
// enforce it. parser is the apparmor_parser to load profiles with; "" looks
// it up in PATH (and /sbin, /usr/sbin, where Debian installs it).
func NewHost(parser string) *Host {
	if !Enabled() {
		return nil
	}
	if parser == "" {
		parser = findParser()
	}
	return &Host{parser: parser}
}

func findParser() string {
	if p, err := exec.LookPath("apparmor_parser"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/apparmor_parser", "/sbin/apparmor_parser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Loaded reports whether the kernel has the named profile; an unreadable
// profile list counts as not loaded.
func (h *Host) Loaded(name string) bool {
	ok, _ := Loaded(name)
	return ok
}

// EnsureDefault loads the default profile unless the kernel already has it
// (someone may have unloaded it since start-up, e.g. by restarting
// apparmor.service). The error says why containers cannot get it.
func (h *Host) EnsureDefault(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ok, err := Loaded(DefaultProfile); err == nil && ok {
		h.lastErr = nil
		return nil
	}
	h.lastErr = h.load(ctx, DefaultProfile, Profile(DefaultProfile))
	return h.lastErr
}

// Status says whether the default profile is available, for the runtime's
// verbose status.
func (h *Host) Status() map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := map[string]any{"enabled": true, "defaultProfile": DefaultProfile, "parser": h.parser}
	loaded, err := Loaded(DefaultProfile)
	st["defaultProfileLoaded"] = loaded
	switch {
	case err != nil:
		st["error"] = err.Error()
	case !loaded && h.lastErr != nil:
		st["error"] = h.lastErr.Error()
	}
	return st
}

// load replaces (or adds) a profile in the kernel's policy.
func (h *Host) load(ctx context.Context, name string, text []byte) error {
	if h.parser == "" {
		return errors.New("load AppArmor profile " + name + ": apparmor_parser not found (install the apparmor package)")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	// -r replaces a loaded profile of the same name, -K skips the cache
	// (which would have to live outside our directories), -W writes none.
	cmd := exec.CommandContext(ctx, h.parser, "-Kr")
	cmd.Stdin = bytes.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("load AppArmor profile %s with %s: %w: %s", name, h.parser, err, bytes.TrimSpace(out))
	}
	return nil
}
