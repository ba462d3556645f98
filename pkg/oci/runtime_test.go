package oci

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// newTestRuntime needs root, runc, conmon and a static busybox.
func newTestRuntime(t *testing.T) (*Runtime, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running containers needs root")
	}
	bins := map[string]string{}
	for _, b := range []string{"runc", "conmon", "busybox"} {
		p, err := exec.LookPath(b)
		if err != nil {
			t.Skipf("%s not installed (hack/install-deps.sh installs it)", b)
		}
		bins[b] = p
	}
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(bins["busybox"])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sh", "sleep", "echo"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := NewRuntime(RuntimeOptions{Runc: bins["runc"], Conmon: bins["conmon"], StateDir: filepath.Join(dir, "state")},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, rootfs
}

func testSpec(t *testing.T, rootfs string, args ...string) *specs.Spec {
	t.Helper()
	g, err := generate.New("linux")
	if err != nil {
		t.Fatal(err)
	}
	g.SetRootPath(rootfs)
	g.SetProcessArgs(args)
	g.SetProcessTerminal(false)
	g.SetProcessCwd("/")
	g.SetHostname("")
	return g.Config
}

func create(t *testing.T, r *Runtime, rootfs, id string, args ...string) string {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "ctr.log")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pid, err := r.Create(ctx, CreateOptions{ID: id, Name: id, Spec: testSpec(t, rootfs, args...), LogPath: logPath})
	if err != nil {
		t.Fatal(err)
	}
	if pid <= 0 {
		t.Fatalf("pid = %d", pid)
	}
	t.Cleanup(func() { _ = r.Delete(context.Background(), id) })
	return logPath
}

func TestRunToCompletion(t *testing.T) {
	r, rootfs := newTestRuntime(t)
	ctx := context.Background()
	logPath := create(t, r, rootfs, "done", "/bin/sh", "-c", "echo hello; echo oops >&2; exit 3")
	if st, err := r.State(ctx, "done"); err != nil || st.Status != "created" {
		t.Fatalf("state before start = %+v, %v", st, err)
	}
	if _, ok := r.Exited("done"); ok {
		t.Fatal("exited before it started")
	}
	if err := r.Start(ctx, "done"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	exit, err := r.Wait(wctx, "done")
	if err != nil || exit.Code != 3 {
		t.Fatalf("Wait = %+v, %v; want exit code 3", exit, err)
	}
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{`(?m)^\S+ stdout F hello$`, `(?m)^\S+ stderr F oops$`} {
		if !regexp.MustCompile(re).Match(log) {
			t.Errorf("log lacks %s:\n%s", re, log)
		}
	}
}

func TestKillAndDelete(t *testing.T) {
	r, rootfs := newTestRuntime(t)
	ctx := context.Background()
	// sh as PID 1 has no SIGTERM handler, so only SIGKILL ends it.
	create(t, r, rootfs, "sleeper", "/bin/sh", "-c", "sleep 600")
	if err := r.Start(ctx, "sleeper"); err != nil {
		t.Fatal(err)
	}
	if st, err := r.State(ctx, "sleeper"); err != nil || st.Status != "running" {
		t.Fatalf("state = %+v, %v", st, err)
	}
	if err := r.Kill(ctx, "sleeper", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	exit, err := r.Wait(wctx, "sleeper")
	if err != nil || exit.Code != 137 {
		t.Fatalf("exit after SIGKILL = %+v, %v; want 137", exit, err)
	}
	if err := r.Kill(ctx, "sleeper", syscall.SIGKILL); err != nil {
		t.Fatalf("Kill of a stopped container = %v; want nil", err)
	}
	if err := r.Delete(ctx, "sleeper"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.State(ctx, "sleeper"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("State after Delete = %v; want NotFound", err)
	}
	if _, err := os.Stat(r.BundleDir("sleeper")); !os.IsNotExist(err) {
		t.Fatalf("bundle left after Delete: %v", err)
	}
	if err := r.Delete(ctx, "sleeper"); err != nil {
		t.Fatalf("second Delete = %v; want nil", err)
	}
}

func TestDeleteKillsARunningContainer(t *testing.T) {
	r, rootfs := newTestRuntime(t)
	ctx := context.Background()
	create(t, r, rootfs, "busy", "/bin/sleep", "600")
	if err := r.Start(ctx, "busy"); err != nil {
		t.Fatal(err)
	}
	st, err := r.State(ctx, "busy")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, "busy"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(st.Pid, 0); err == nil {
		if data, _ := os.ReadFile("/proc/" + itoa(st.Pid) + "/stat"); !strings.Contains(string(data), ") Z ") {
			t.Fatalf("process %d still alive after Delete", st.Pid)
		}
	}
}

func TestCreateFailureLeavesNothing(t *testing.T) {
	r, rootfs := newTestRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := r.Create(ctx, CreateOptions{ID: "bad", Name: "bad", Spec: testSpec(t, rootfs, "/no/such/binary"), LogPath: filepath.Join(t.TempDir(), "log")})
	if err == nil {
		t.Fatal("Create of a container whose binary does not exist succeeded")
	}
	if !strings.Contains(err.Error(), "no such file") && !strings.Contains(err.Error(), "/no/such/binary") {
		t.Fatalf("error does not say why: %v", err)
	}
	if _, err := os.Stat(r.BundleDir("bad")); !os.IsNotExist(err) {
		t.Fatalf("bundle left after a failed Create: %v", err)
	}
	if _, err := r.State(ctx, "bad"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("runc still knows the failed container: %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
