package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func conditions(t *testing.T, st *runtimeapi.StatusResponse) map[string]*runtimeapi.RuntimeCondition {
	t.Helper()
	out := map[string]*runtimeapi.RuntimeCondition{}
	for _, c := range st.GetStatus().GetConditions() {
		out[c.Type] = c
	}
	return out
}

func TestVersionStatusAndRuntimeConfig(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	ctx := ctxT(t)

	v, err := d.Runtime.Version(ctx, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if v.RuntimeName != "cri-runtime" || v.RuntimeApiVersion != "v1" || v.RuntimeVersion == "" {
		t.Fatalf("Version = %+v", v)
	}

	st, err := d.Runtime.Status(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	conds := conditions(t, st)
	for _, typ := range []string{runtimeapi.RuntimeReady, runtimeapi.NetworkReady} {
		if c := conds[typ]; c == nil || !c.Status {
			t.Fatalf("%s = %v; want true", typ, c)
		}
	}
	var cfg struct {
		Root  string `json:"root"`
		State string `json:"state"`
		Image struct {
			RegistriesConf string `json:"registries_conf"`
		} `json:"image"`
	}
	if err := json.Unmarshal([]byte(st.Info["config"]), &cfg); err != nil || cfg.Root != d.Root || cfg.State != d.State || cfg.Image.RegistriesConf != registriesConf {
		t.Fatalf("verbose config = %q (%v); want root %s", st.Info["config"], err, d.Root)
	}
	var network struct{ Source string }
	if err := json.Unmarshal([]byte(st.Info["network"]), &network); err != nil || network.Source != "built-in" {
		t.Fatalf("verbose network = %q; want the built-in network on an empty conf dir", st.Info["network"])
	}
	if !strings.Contains(d.Logs(), "pods use the built-in network") {
		t.Fatal("the log does not say that the built-in network is in use")
	}

	fs, err := d.Images.ImageFsInfo(ctx)
	if err != nil || len(fs.ImageFilesystems) != 1 || fs.ImageFilesystems[0].GetFsId().GetMountpoint() == "" || fs.ImageFilesystems[0].GetTimestamp() == 0 {
		t.Fatalf("ImageFsInfo = %v, %v", fs, err)
	}

	rc, err := d.Runtime.RuntimeConfig(ctx)
	if err != nil || rc.GetLinux().GetCgroupDriver() != runtimeapi.CgroupDriver_CGROUPFS {
		t.Fatalf("RuntimeConfig = %v, %v; want cgroupfs", rc, err)
	}
}

func TestSocketIsRootOnly(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	fi, err := os.Stat(d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 || st.Uid != 0 || st.Gid != 0 {
		t.Fatalf("socket mode %v owner %d:%d; want a 0660 socket owned by root:root", fi.Mode(), st.Uid, st.Gid)
	}
}

// rawCodec sends bytes as they are, to put a malformed message on the wire.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = data
	return nil
}
func (rawCodec) Name() string { return "proto" }

func TestMalformedRequests(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	ctx := ctxT(t)

	_, err := d.Runtime.PodSandboxStatus(ctx, "", false)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "pod_sandbox_id") {
		t.Fatalf("PodSandboxStatus(\"\") = %v; want InvalidArgument naming pod_sandbox_id", err)
	}
	_, err = d.Images.ImageStatus(ctx, &runtimeapi.ImageSpec{}, false)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "image.image") {
		t.Fatalf("ImageStatus(empty) = %v; want InvalidArgument naming image.image", err)
	}
	_, _, err = d.Runtime.ExecSync(ctx, "some-container", nil, time.Second)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "cmd") {
		t.Fatalf("ExecSync(no cmd) = %v; want InvalidArgument naming cmd", err)
	}

	// Bytes that are not a protobuf message at all.
	conn, err := grpc.NewClient("unix://"+d.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var out []byte
	err = conn.Invoke(ctx, "/runtime.v1.RuntimeService/Version", []byte{0xff, 0xff, 0xff, 0x07}, &out, grpc.ForceCodec(rawCodec{}))
	if err == nil || status.Code(err) == codes.Unknown {
		t.Fatalf("garbage request = %v; want a definite error code", err)
	}

	if _, err := d.Runtime.Version(ctx, "v1"); err != nil {
		t.Fatalf("daemon stopped serving after malformed requests: %v", err)
	}
	if strings.Contains(d.Logs(), "panic") {
		t.Fatalf("daemon logged a panic:\n%s", d.Logs())
	}
}

func TestSecondDaemonRefusesToStart(t *testing.T) {
	t.Parallel()
	first := startDaemon(t)

	t.Run("same socket", func(t *testing.T) {
		second := framework.NewDaemon(t, framework.Options{Binary: binaryFor(t), Args: []string{"--listen", first.Socket}})
		err := second.Start()
		if err == nil || !strings.Contains(second.Logs(), "another daemon is serving on "+first.Socket) {
			t.Fatalf("second daemon on the same socket: start error %v, log:\n%s", err, second.Logs())
		}
	})
	t.Run("same root", func(t *testing.T) {
		second := framework.NewDaemon(t, framework.Options{Binary: binaryFor(t), Args: []string{"--root", first.Root}})
		err := second.Start()
		if err == nil || !strings.Contains(second.Logs(), first.Root+" is in use by another cri-runtime") {
			t.Fatalf("second daemon on the same root: start error %v, log:\n%s", err, second.Logs())
		}
	})
	if _, err := first.Runtime.Version(ctxT(t), "v1"); err != nil {
		t.Fatalf("first daemon disturbed: %v", err)
	}
}

func TestGracefulStopAndRestart(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	if err := d.Stop(syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.ExitErr(); err != nil {
		t.Fatalf("exit after SIGTERM = %v; want 0", err)
	}
	if _, err := os.Stat(d.Socket); !os.IsNotExist(err) {
		t.Fatalf("socket left behind after a clean stop: %v", err)
	}
	if err := d.Start(); err != nil {
		t.Fatalf("restart on the same root: %v\n%s", err, d.Logs())
	}
	if _, err := d.Runtime.Version(ctxT(t), "v1"); err != nil {
		t.Fatal(err)
	}

	// After a kill -9 the socket is stale; the next start replaces it.
	if err := d.Stop(syscall.SIGKILL, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatalf("start after kill -9: %v\n%s", err, d.Logs())
	}
}

func TestReadinessFollowsTheHost(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "--runtime", "/nonexistent/runc")
	ctx := ctxT(t)

	st, err := d.Runtime.Status(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if c := conditions(t, st)[runtimeapi.RuntimeReady]; c.Status || c.Reason != "OCIRuntimeNotReady" || !strings.Contains(c.Message, "/nonexistent/runc") {
		t.Fatalf("RuntimeReady with a missing runc = %v", c)
	}

	// A network config naming a plugin that is not installed: not ready.
	conf := filepath.Join(d.CNIConf, "10-test.conflist")
	if err := os.MkdirAll(d.CNIConf, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(plugin string) {
		body := `{"cniVersion":"1.0.0","name":"e2e-net","plugins":[{"type":"` + plugin + `","bridge":"e2ebr0","ipam":{"type":"host-local","subnet":"10.123.0.0/24"}}]}`
		if err := os.WriteFile(conf+".tmp", []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(conf+".tmp", conf); err != nil {
			t.Fatal(err)
		}
	}
	write("no-such-plugin")
	st, err = d.Runtime.Status(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if c := conditions(t, st)[runtimeapi.NetworkReady]; c.Status || c.Reason != "NetworkPluginNotReady" || !strings.Contains(c.Message, "no-such-plugin") {
		t.Fatalf("NetworkReady with a missing plugin = %v", c)
	}

	// Fixing the file is noticed without a restart.
	write("bridge")
	st, err = d.Runtime.Status(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if c := conditions(t, st)[runtimeapi.NetworkReady]; !c.Status || !strings.Contains(st.Info["network"], `"e2e-net"`) {
		t.Fatalf("NetworkReady after fixing the config = %v, network %s", c, st.Info["network"])
	}
}

// TestZeroConfig runs the command the README promises works with no
// configuration file at all.
func TestZeroConfig(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/etc/cri-runtime"); err == nil {
		t.Skip("/etc/cri-runtime exists on this host; zero-config is not testable here")
	}
	d := framework.NewDaemon(t, framework.Options{Binary: binaryFor(t)})
	d.Args = []string{"--listen", d.Socket, "--root", d.Root, "--state", d.State}
	if err := d.Start(); err != nil {
		t.Fatalf("zero-config start: %v\n%s", err, d.Logs())
	}
	st, err := d.Runtime.Status(ctxT(t), false)
	if err != nil {
		t.Fatal(err)
	}
	for typ, c := range conditions(t, st) {
		if !c.Status {
			t.Errorf("%s = false (%s: %s) with zero configuration", typ, c.Reason, c.Message)
		}
	}
	for _, dir := range []string{d.Root, d.State} {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Errorf("daemon did not create %s: %v", dir, err)
		}
	}
}

func cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(binary, args...).CombinedOutput()
	return string(out), err
}

func TestCommandLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "config.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"serve", "--no-such-flag"}, "-no-such-flag"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"stray argument", []string{"config", "extra"}, `unexpected argument "extra"`},
		{"missing explicit config", []string{"config", "--config", filepath.Join(dir, "absent.toml")}, "absent.toml"},
		{"unknown key", []string{"config", "--config", write("a.toml", "root = \"/r\"\n\nrunc_path = \"x\"\n")}, "a.toml:3: unknown key \"runc_path\""},
		{"syntax error", []string{"config", "--config", write("b.toml", "root = \"/r\"\nstate = \n")}, "b.toml:2"},
		{"invalid value", []string{"config", "--config", write("c.toml", "cgroup_driver = \"cgroupv9\"\n")}, "cgroup_driver"},
		{"invalid flag value", []string{"serve", "--log-level", "chatty"}, "log_level"},
		{"bad drop-in", []string{"config", "--config-dir", filepath.Dir(write("config.d/10-x.toml", "listen = 5\n"))}, "10-x.toml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := cli(t, tc.args...)
			if err == nil || !strings.Contains(out, tc.want) {
				t.Fatalf("cri-runtime %v: err=%v, output:\n%s\nwant a failure mentioning %q", tc.args, err, out, tc.want)
			}
		})
	}

	t.Run("config prints the effective configuration", func(t *testing.T) {
		cfg := write("ok.toml", "log_level = \"warn\"\n[network]\nconf_dir = \"/x/net.d\"\n")
		out, err := cli(t, "config", "--config", cfg, "--config-dir", t.TempDir(), "--root", "/srv/crirt")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for _, want := range []string{`log_level = "warn"`, `conf_dir = "/x/net.d"`, `root = "/srv/crirt"`, "# Directory for persistent state"} {
			if !strings.Contains(out, want) {
				t.Errorf("config output lacks %q:\n%s", want, out)
			}
		}
		// The output is itself a valid configuration file.
		again, err := cli(t, "config", "--config", write("again.toml", out), "--config-dir", t.TempDir())
		if err != nil || again != out {
			t.Fatalf("config output does not round-trip: %v\n%s", err, again)
		}
	})
	t.Run("version", func(t *testing.T) {
		out, err := cli(t, "version")
		if err != nil || !strings.Contains(out, "cri-runtime ") || !strings.Contains(out, "runtime ") {
			t.Fatalf("version: %v\n%s", err, out)
		}
	})
	t.Run("help", func(t *testing.T) {
		out, err := cli(t, "--help")
		if err != nil || !strings.Contains(out, "Usage: cri-runtime") {
			t.Fatalf("--help: %v\n%s", err, out)
		}
	})
}
