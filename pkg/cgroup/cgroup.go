// Package cgroup creates, removes and measures the cgroups of pods and
// containers, on cgroup v1 and v2, through the cgroups library runc uses.
package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
)

// manage returns the library's manager for the cgroupfs path.
func manage(path string) (cgroups.Manager, error) {
	return manager.New(&cgroups.Cgroup{Path: path, Resources: &cgroups.Resources{SkipDevices: true}})
}

// Ensure creates the cgroup at path in every hierarchy when it does not
// exist yet. It returns the topmost directory it had to create ("" when the
// cgroup existed), so Remove can take away exactly what was made.
func Ensure(path string) (string, error) {
	top := TopMissing(path)
	if top == "" {
		return "", nil
	}
	m, err := manage(path)
	if err != nil {
		return "", fmt.Errorf("cgroup %s: %w", path, err)
	}
	if err := m.Apply(-1); err != nil {
		_ = Remove(path, top)
		return "", fmt.Errorf("create cgroup %s: %w", path, err)
	}
	return top, nil
}

// TopMissing is the topmost directory Ensure(path) would create, "" when
// the cgroup exists: a caller can record it before creating anything, so a
// crash half-way leaves a record of what to remove.
func TopMissing(path string) string {
	if Exists(path) {
		return ""
	}
	top := path
	for parent := filepath.Dir(top); parent != "/" && !Exists(parent); parent = filepath.Dir(parent) {
		top = parent
	}
	return top
}

// Exists looks in the unified hierarchy, or in the memory controller's on
// cgroup v1.
func Exists(path string) bool {
	base := "/sys/fs/cgroup"
	if !cgroups.IsCgroup2UnifiedMode() {
		base = "/sys/fs/cgroup/memory"
	}
	_, err := os.Stat(filepath.Join(base, path))
	return err == nil
}

// Remove removes the cgroup at path, then each ancestor up to top that
// was created with it and that nothing else uses now (a non-empty one is
// shared and stays). Gone already is fine.
func Remove(path, top string) error {
	m, err := manage(path)
	if err != nil {
		return err
	}
	if err := m.Destroy(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove cgroup %s: %w", path, err)
	}
	// Ancestors go with a plain rmdir in each hierarchy: the library's
	// Destroy removes sub-cgroups too, which would take another pod's.
	for dir := filepath.Dir(path); top != "" && dir != "/" && strings.HasPrefix(path, top) && len(dir) >= len(top); dir = filepath.Dir(dir) {
		parent, err := manage(dir)
		if err != nil {
			return err
		}
		inUse := false
		for _, p := range parent.GetPaths() {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				inUse = true // has children, or processes: shared with another cgroup
			}
		}
		if inUse {
			break
		}
	}
	return nil
}

// Controllers are the controllers runc can set limits through on this host:
// on cgroup v1 those mounted as v1 hierarchies, on v2 those the unified
// hierarchy offers. On a hybrid host a controller bound to the unified
// hierarchy (often hugetlb) is out of reach of runc's v1 manager, which
// fails a container whose spec names it.
func Controllers() (map[string]bool, error) {
	mounts, err := cgroups.GetCgroupMounts(false)
	if err != nil {
		return nil, fmt.Errorf("find cgroup controllers: %w", err)
	}
	out := map[string]bool{}
	for _, m := range mounts {
		for _, s := range m.Subsystems {
			if !strings.HasPrefix(s, "name=") {
				out[s] = true
			}
		}
	}
	return out, nil
}

// PodInit is the cgroup for the init of the pod whose cgroup is pod: the pod's
// own on cgroup v1, a leaf "pause" under it on v2. cgroup v2 lets no process
// live in a cgroup whose children have domain controllers (memory, io…)
// enabled; with the init in the pod's cgroup, runc finds each container's
// cgroup "domain invalid" and makes it threaded, where memory limits do not
// apply and cgroup.kill (runc kill of a container without a PID namespace of
// its own) fails with "operation not supported".
func PodInit(pod string) string { return podInit(pod, cgroups.IsCgroup2UnifiedMode()) }

func podInit(pod string, unified bool) string {
	if unified {
		return filepath.Join(pod, "pause")
	}
	return pod
}

// MoveToScope puts process pid into a transient systemd scope
// "<prefix>-<name>.scope" in the given slice, made through systemd's D-Bus
// API: the systemd cgroup driver's way to place a process, as runc places a
// container. systemd removes the scope once its last process is gone.
func MoveToScope(slice, prefix, name string, pid int) error {
	m, err := manager.New(&cgroups.Cgroup{
		Parent: slice, ScopePrefix: prefix, Name: name, Systemd: true,
		Resources: &cgroups.Resources{SkipDevices: true},
	})
	if err != nil {
		return fmt.Errorf("scope %s-%s in %s: %w", prefix, name, slice, err)
	}
	if err := m.Apply(pid); err != nil {
		return fmt.Errorf("start scope %s-%s.scope in %s: %w", prefix, name, slice, err)
	}
	return nil
}

// Join puts the calling process into the cgroup at path, in every hierarchy.
func Join(path string) error { return Move(path, os.Getpid()) }

// Move puts process pid into the cgroup at path, in every hierarchy.
func Move(path string, pid int) error {
	m, err := manage(path)
	if err != nil {
		return err
	}
	return m.Apply(pid)
}

// Sampler remembers the last CPU sample of each cgroup, to turn the
// cumulative counter into a rate.
type Sampler struct {
	mu   sync.Mutex
	last map[string]cpuSample
}

type cpuSample struct {
	at    time.Time
	usage uint64
}

// rate records a sample and returns nanocores since the previous one.
func (c *Sampler) rate(key string, at time.Time, usage uint64) *uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		c.last = map[string]cpuSample{}
	}
	prev, ok := c.last[key]
	c.last[key] = cpuSample{at, usage}
	if !ok || !at.After(prev.at) || usage < prev.usage {
		return nil
	}
	r := uint64(float64(usage-prev.usage) / at.Sub(prev.at).Seconds())
	return &r
}

func (c *Sampler) Forget(key string) {
	c.mu.Lock()
	delete(c.last, key)
	c.mu.Unlock()
}
