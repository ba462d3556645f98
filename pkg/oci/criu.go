package oci

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/safego"
)

// CRIUStatus says whether checkpoint and restore work on this host, and if
// not, why: CRIU is missing, or `criu check` refuses the kernel.
type CRIUStatus struct {
	Available bool   `json:"available"`
	Path      string `json:"path,omitempty"`
	Version   string `json:"version,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// CRIU is asked once, at start-up, whether it can checkpoint on this host
// (`criu check`, in the background: it takes a moment). runc runs it from
// PATH, so that is where it is looked for. Safe for concurrent use.
type CRIU struct {
	done   chan struct{}
	status CRIUStatus
}

// NewCRIU starts the probe of the criu binary name (normally "criu").
func NewCRIU(name string, log *slog.Logger) *CRIU {
	c := &CRIU{done: make(chan struct{})}
	safego.Go(log, "probe CRIU", func() {
		defer close(c.done)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c.status = probeCRIU(ctx, name)
		if c.status.Available {
			log.Info("checkpoint/restore available", "criu", c.status.Path, "criu_version", c.status.Version)
		} else {
			log.Info("checkpoint/restore not available", "reason", c.status.Reason)
		}
	})
	return c
}

// CRIUFromStatus is a CRIU whose answer is known (for tests).
func CRIUFromStatus(st CRIUStatus) *CRIU {
	c := &CRIU{done: make(chan struct{}), status: st}
	close(c.done)
	return c
}

// Status waits for the probe (or ctx) and reports it.
func (c *CRIU) Status(ctx context.Context) CRIUStatus {
	select {
	case <-c.done:
		return c.status
	case <-ctx.Done():
		return CRIUStatus{Reason: "CRIU is still being probed"}
	}
}

// Check is nil when checkpoint and restore can work, else FailedPrecondition
// with CRIU's reason.
func (c *CRIU) Check(ctx context.Context) error {
	st := c.Status(ctx)
	if st.Available {
		return nil
	}
	return fmt.Errorf("checkpoint/restore is not available on this node: %s: %w", st.Reason, errdefs.ErrFailedPrecondition)
}

func probeCRIU(ctx context.Context, name string) CRIUStatus {
	path, err := exec.LookPath(name)
	if err != nil {
		return CRIUStatus{Reason: fmt.Sprintf("%s not found on PATH (install CRIU)", name)}
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	st := CRIUStatus{Path: path}
	if out, err := exec.CommandContext(ctx, path, "--version").Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(l, "Version:"); ok {
				st.Version = strings.TrimSpace(v)
			}
		}
	}
	cmd := exec.CommandContext(ctx, path, "check")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Dir = os.TempDir()
	if err := cmd.Run(); err != nil {
		st.Reason = "criu check: " + criuErrors(out.String(), err)
		return st
	}
	st.Available = true
	return st
}

// criuErrors picks CRIU's "Error (...)" lines out of its output, the
// reason a human needs; the whole output when there are none.
func criuErrors(out string, err error) string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "Error") {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		if s := strings.TrimSpace(out); s != "" {
			lines = append(lines, s)
		} else {
			lines = append(lines, err.Error())
		}
	}
	msg := strings.Join(lines, "; ")
	if len(msg) > 1024 {
		msg = msg[:1024] + "…"
	}
	return msg
}
