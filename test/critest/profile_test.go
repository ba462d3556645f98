package critest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// profiler takes CPU profiles of our daemon during the comparison, from
// the pprof endpoint it serves with metrics.profiling, so a slow path is
// found from where the daemon spends its time, not guessed.
type profiler struct {
	addr, dir string
}

// profileOurs turns profiling on in the daemon's drop-in configuration
// (before it starts) when BENCH_PROFILE names a directory; nil otherwise.
func profileOurs(t *testing.T, daemonDir string) *profiler {
	t.Helper()
	out := os.Getenv("BENCH_PROFILE")
	if out == "" {
		return nil
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	conf := fmt.Sprintf("[metrics]\naddress = %q\nprofiling = true\n", addr)
	if err := os.WriteFile(filepath.Join(daemonDir, "config.d", "90-bench-profile.toml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return &profiler{addr: addr, dir: out}
}

// start profiles the daemon until the returned func is called, in slices
// of profileSlice written to <dir>/<name>-<n>.pprof (`go tool pprof`
// merges them: `go tool pprof -top dir/relist-*.pprof`), and records its
// execution trace alike in <name>-<n>.trace: the CPU profile says where
// the daemon computes, the trace where a call waits (`go tool trace
// -pprof=syscall x.trace` is the time blocked in each system call, an
// fsync or a child's exit). The endpoint writes a slice only when its
// seconds are up, so the last one runs past stop by up to one slice. A
// nil profiler does nothing.
func (p *profiler) start(t *testing.T, name string) (stop func()) {
	if p == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for kind, ext := range map[string]string{"profile": "pprof", "trace": "trace"} {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				if err := p.slice(kind, filepath.Join(p.dir, fmt.Sprintf("%s-%d.%s", name, n, ext))); err != nil {
					t.Logf("%s %s: %v", kind, name, err)
					return
				}
			}
		})
	}
	return func() { cancel(); wg.Wait() }
}

const profileSlice = 5 * time.Second

func (p *profiler) slice(kind, path string) error {
	url := fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", p.addr, kind, int(profileSlice/time.Second))
	c := http.Client{Timeout: profileSlice + 30*time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s: %s", url, resp.Status, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
