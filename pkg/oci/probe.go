// Package oci turns containers into OCI bundles and runs them with an OCI
// runtime (runc) under a per-container monitor (conmon).
package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Binary is a program we depend on, as found on this host.
type Binary struct {
	Name    string `json:"name"`    // as configured: a bare name or a path
	Path    string `json:"path"`    // resolved absolute path
	Version string `json:"version"` // first line of "--version", last word
}

// Programs is what RuntimeReady depends on: the OCI runtime and the monitor.
type Programs struct {
	Runtime Binary `json:"runtime"`
	Monitor Binary `json:"monitor"`
}

// Prober checks that the OCI runtime and the monitor are installed and run.
// Results are cached per binary and re-probed only when the file changes, so
// the kubelet's frequent Status calls cost a few stat(2)s and no exec.
// It is safe for concurrent use.
type Prober struct {
	runtime, monitor string

	mu    sync.Mutex
	cache map[string]probed // by resolved path
}

type probed struct {
	modTime time.Time
	size    int64
	version string
}

// NewProber returns a Prober for the configured runtime and monitor names.
func NewProber(runtime, monitor string) *Prober {
	return &Prober{runtime: runtime, monitor: monitor, cache: map[string]probed{}}
}

// Probe reports both programs, or a *errdefs.NotReadyError saying which one
// is missing or broken.
func (p *Prober) Probe(ctx context.Context) (Programs, error) {
	rt, err := p.probe(ctx, p.runtime)
	if err != nil {
		return Programs{}, errdefs.NotReady("OCIRuntimeNotReady", "OCI runtime %q: %w", p.runtime, err)
	}
	mon, err := p.probe(ctx, p.monitor)
	if err != nil {
		return Programs{}, errdefs.NotReady("MonitorNotReady", "container monitor %q: %w", p.monitor, err)
	}
	return Programs{Runtime: rt, Monitor: mon}, nil
}

func (p *Prober) probe(ctx context.Context, name string) (Binary, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return Binary{}, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return Binary{}, err
	}
	p.mu.Lock()
	c, ok := p.cache[path]
	p.mu.Unlock()
	if ok && c.modTime.Equal(fi.ModTime()) && c.size == fi.Size() {
		return Binary{Name: name, Path: path, Version: c.version}, nil
	}
	version, err := runVersion(ctx, path)
	if err != nil {
		return Binary{}, err
	}
	p.mu.Lock()
	p.cache[path] = probed{modTime: fi.ModTime(), size: fi.Size(), version: version}
	p.mu.Unlock()
	return Binary{Name: name, Path: path, Version: version}, nil
}

// runVersion runs "path --version" and returns the last word of its first
// line ("runc version 1.1.5" → "1.1.5").
func runVersion(ctx context.Context, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, "--version")
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return "", fmt.Errorf("%s --version: %w", path, err)
		}
		return "", fmt.Errorf("%s --version: %w: %s", path, err, msg)
	}
	first, _, _ := strings.Cut(out.String(), "\n")
	fields := strings.Fields(first)
	if len(fields) == 0 {
		return "", errors.New(path + " --version printed nothing")
	}
	return fields[len(fields)-1], nil
}
