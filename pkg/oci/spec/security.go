package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"
	"github.com/opencontainers/runtime-tools/generate/seccomp"

	"github.com/cri-runtime/cri-runtime/pkg/apparmor"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// DefaultAppArmorProfile is the AppArmor profile RuntimeDefault selects
// (pkg/apparmor writes and loads it).
const DefaultAppArmorProfile = apparmor.DefaultProfile

// defaultCapabilities is Docker's and containerd's default set.
var defaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// knownCapabilities lists every capability the capability library (the
// one runtime-tools uses) knows, as "CAP_X", in kernel order. It is a fact
// of the library, not of the host (Host.BoundingSet says what this host
// grants), so it is computed once and never replaced.
var knownCapabilities = sync.OnceValue(func() []string {
	var out []string
	for _, c := range capability.ListKnown() {
		out = append(out, "CAP_"+strings.ToUpper(c.String()))
	}
	return out
})

// readBoundingSet reads this process's capability bounding set (CapBnd in
// /proc/self/status); every capability when it cannot be read.
func readBoundingSet() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ^uint64(0)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if hex, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			if v, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64); err == nil {
				return v
			}
		}
	}
	return ^uint64(0)
}

// grantableCapabilities are the known capabilities this host lets us give:
// what "privileged" and "add ALL" mean. Asking runc for one outside the
// bounding set (e.g. CAP_SYS_RESOURCE where the daemon lacks it) would make
// every such container fail to start.
func grantableCapabilities(h Host) []string {
	bnd := h.boundingSet()
	var out []string
	for _, c := range capability.ListKnown() {
		if c < 64 && bnd&(1<<uint(c)) != 0 {
			out = append(out, "CAP_"+strings.ToUpper(c.String()))
		}
	}
	return out
}

// Default masked and read-only paths, as containerd and Docker use them.
var (
	defaultMaskedPaths = []string{
		"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap",
	}
	defaultReadonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// setCapabilities computes the bounding, effective and permitted sets;
// inheritable and ambient stay empty. Privileged containers get every
// capability the host lets us grant (grantableCapabilities). Otherwise, from the default set: add ALL, then drop ALL, then
// the individual adds, then the individual drops; so {add: ALL, drop: CHOWN}
// is everything but CAP_CHOWN, and {drop: ALL, add: NET_ADMIN} is only that.
func setCapabilities(g *generate.Generator, in Input) error {
	adds, addAll, err := normalizeCapabilities(in.Security.CapAdd)
	if err != nil {
		return fmt.Errorf("add: %w", err)
	}
	drops, dropAll, err := normalizeCapabilities(in.Security.CapDrop)
	if err != nil {
		return fmt.Errorf("drop: %w", err)
	}

	var caps []string
	if in.Security.Privileged {
		caps = grantableCapabilities(in.Host)
	} else {
		caps = slices.Clone(defaultCapabilities)
		if addAll {
			caps = grantableCapabilities(in.Host)
		}
		if dropAll {
			caps = nil
		}
		for _, c := range adds {
			if !slices.Contains(caps, c) {
				caps = append(caps, c)
			}
		}
		caps = slices.DeleteFunc(caps, func(c string) bool { return slices.Contains(drops, c) })
	}
	g.Config.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding:  caps,
		Effective: slices.Clone(caps),
		Permitted: slices.Clone(caps),
	}
	return nil
}

// normalizeCapabilities turns names into "CAP_X" form and reports "ALL"
// separately. Unknown names are invalid arguments.
func normalizeCapabilities(names []string) (caps []string, all bool, err error) {
	for _, n := range names {
		c := strings.ToUpper(strings.TrimSpace(n))
		if c == "ALL" {
			all = true
			continue
		}
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		if !slices.Contains(knownCapabilities(), c) {
			return nil, false, fmt.Errorf("unknown capability %q: %w", n, errdefs.ErrInvalidArgument)
		}
		caps = append(caps, c)
	}
	return caps, all, nil
}

// setMaskedPaths writes linux.maskedPaths and linux.readonlyPaths: the
// defaults when asked for, else exactly the request's lists. Privileged
// containers get neither, like Docker's --privileged.
func setMaskedPaths(g *generate.Generator, in Input) error {
	sec := in.Security
	g.Config.Linux.MaskedPaths, g.Config.Linux.ReadonlyPaths = nil, nil
	if sec.Privileged {
		return nil
	}
	masked, readonly := sec.MaskedPaths, sec.ReadonlyPaths
	if sec.DefaultMaskedPaths {
		masked = defaultMaskedPaths
	}
	if sec.DefaultReadonlyPaths {
		readonly = defaultReadonlyPaths
	}
	for _, p := range slices.Concat(masked, readonly) {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("masked or read-only path %q is not absolute: %w", p, errdefs.ErrInvalidArgument)
		}
	}
	if len(masked) > 0 {
		g.Config.Linux.MaskedPaths = slices.Clone(masked)
	}
	if len(readonly) > 0 {
		g.Config.Linux.ReadonlyPaths = slices.Clone(readonly)
	}
	return nil
}

// setSeccomp chooses linux.seccomp: runtime-tools' default profile (built
// for the final capabilities, which it consults), none, or a profile file
// on the node. Privileged containers are unconfined whatever profile they
// name, as with containerd and CRI-O (and as critest checks).
func setSeccomp(g *generate.Generator, in Input) error {
	p := in.Security.Seccomp
	switch {
	case in.Security.Privileged || p.Type == Unconfined:
		g.Config.Linux.Seccomp = nil
	case p.Type == Localhost:
		prof, err := loadSeccompProfile(p.LocalhostPath)
		if err != nil {
			return err
		}
		g.Config.Linux.Seccomp = prof
	case p.Type == RuntimeDefault:
		g.Config.Linux.Seccomp = defaultSeccompProfile(g.Config)
	default:
		return fmt.Errorf("unknown profile type %d: %w", p.Type, errdefs.ErrInvalidArgument)
	}
	return nil
}

// defaultSeccompProfile is runtime-tools' default profile with its rules in
// a stable order: it appends the rules each capability unlocks while ranging
// over a map, and the same input should give the same config.json. The order
// of rules does not change what a filter allows.
func defaultSeccompProfile(s *specs.Spec) *specs.LinuxSeccomp {
	prof := seccomp.DefaultProfile(s)
	slices.SortStableFunc(prof.Syscalls, func(a, b specs.LinuxSyscall) int {
		if c := slices.Compare(a.Names, b.Names); c != 0 {
			return c
		}
		return strings.Compare(string(a.Action), string(b.Action))
	})
	return prof
}

// loadSeccompProfile reads a JSON seccomp profile in the runtime-spec
// layout (which Docker-format profiles also fit for the fields runc uses).
func loadSeccompProfile(path string) (*specs.LinuxSeccomp, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("localhost profile path %q is not absolute: %w", path, errdefs.ErrInvalidArgument)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read localhost profile: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	var prof specs.LinuxSeccomp
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&prof); err != nil {
		return nil, fmt.Errorf("parse localhost profile %q: %v: %w", path, err, errdefs.ErrInvalidArgument)
	}
	if prof.DefaultAction == "" {
		return nil, fmt.Errorf("localhost profile %q has no defaultAction: %w", path, errdefs.ErrInvalidArgument)
	}
	return &prof, nil
}

// setAppArmor sets process.apparmorProfile on nodes with AppArmor
// (in.AppArmor): the named profile for Localhost, DefaultAppArmorProfile for
// RuntimeDefault except for privileged containers, nothing for Unconfined.
// A profile the kernel has not loaded is refused here, with a clear error,
// rather than by runc at create. On nodes without AppArmor RuntimeDefault
// and Unconfined leave the field empty; Localhost is refused, since the
// confinement asked for by name cannot be given (the kubelet refuses such
// pods on such nodes too).
func setAppArmor(g *generate.Generator, in Input) error {
	p := in.Security.AppArmor
	g.SetProcessApparmorProfile("")
	switch p.Type {
	case Localhost:
		if p.LocalhostPath == "" {
			return fmt.Errorf("localhost AppArmor profile without a name: %w", errdefs.ErrInvalidArgument)
		}
	case RuntimeDefault, Unconfined:
	default:
		return fmt.Errorf("unknown profile type %d: %w", p.Type, errdefs.ErrInvalidArgument)
	}
	name := ""
	switch {
	case p.Type == Localhost:
		name = p.LocalhostPath
	case p.Type == RuntimeDefault && !in.Security.Privileged:
		name = DefaultAppArmorProfile
	}
	switch {
	case name == "":
		return nil
	case in.AppArmor == nil && p.Type == Localhost:
		return fmt.Errorf("AppArmor profile %q: AppArmor is not enabled on this node: %w", name, errdefs.ErrFailedPrecondition)
	case in.AppArmor == nil:
		return nil
	case !in.AppArmor.Loaded(name):
		return fmt.Errorf("AppArmor profile %q is not loaded on this node: %w", name, errdefs.ErrFailedPrecondition)
	}
	g.SetProcessApparmorProfile(name)
	return nil
}
