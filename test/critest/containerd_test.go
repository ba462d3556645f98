package critest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	internalapi "k8s.io/cri-api/pkg/apis"
	remote "k8s.io/cri-client/pkg"
)

// containerd is a containerd (with its CRI plugin) on temporary directories,
// for comparing our daemon with it in one run (TestCompareContainerd). Its
// configuration is written here, not taken from the host: the same runc, CNI
// plugins and test registry as our daemon, a pod network of its own.
type containerd struct {
	dir, socket, cniConf string
	cmd                  *exec.Cmd
	log                  *bytes.Buffer
	logMu                sync.Mutex
	done                 chan struct{}
	runtime              internalapi.RuntimeService
	images               internalapi.ImageManagerService
}

// containerdOptions are what the comparison keeps the same for both runtimes.
type containerdOptions struct {
	binary, shim string // containerd and containerd-shim-runc-v2
	runc         string // the OCI runtime binary our daemon uses too
	cniBinDirs   []string
	sandboxImage string
	// registry is the test registry's host:port; every host in redirect is
	// resolved to it over plain HTTP (certs.d hosts.toml files).
	registry string
	redirect []string
}

// startContainerd writes the configuration, starts containerd and connects
// the kubelet's CRI client to it. It is stopped and its directories removed
// when the test ends.
func startContainerd(t testing.TB, o containerdOptions) *containerd {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctrd-")
	if err != nil {
		t.Fatal(err)
	}
	c := &containerd{dir: dir, socket: filepath.Join(dir, "c.sock"), cniConf: filepath.Join(dir, "net.d"), log: &bytes.Buffer{}}
	t.Cleanup(func() { c.stop(t) })
	for _, d := range []string{c.cniConf, filepath.Join(dir, "certs.d"), filepath.Join(dir, "state")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Its state on a tmpfs, as /run is on a node (stop unmounts it).
	if err := syscall.Mount("tmpfs", filepath.Join(dir, "state"), "tmpfs", 0, "mode=0711"); err != nil {
		t.Fatalf("tmpfs for containerd's state: %v", err)
	}
	for _, host := range o.redirect {
		hosts := fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n  skip_verify = true\n",
			"http://"+o.registry, "http://"+o.registry)
		hdir := filepath.Join(dir, "certs.d", host)
		if err := os.MkdirAll(hdir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(hdir, "hosts.toml"), []byte(hosts), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	quoted := make([]string, len(o.cniBinDirs))
	for i, d := range o.cniBinDirs {
		quoted[i] = fmt.Sprintf("%q", d)
	}
	config := fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q

[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = %[5]q
  [plugins."io.containerd.nri.v1.nri"]
    disable = true
  [plugins."io.containerd.grpc.v1.cri"]
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
  [plugins."io.containerd.cri.v1.images"]
    [plugins."io.containerd.cri.v1.images".pinned_images]
      sandbox = %[6]q
    [plugins."io.containerd.cri.v1.images".registry]
      config_path = %[7]q
  [plugins."io.containerd.cri.v1.runtime"]
    enable_selinux = false
    # No CAP_SYS_RESOURCE on the machines this runs on (see README).
    restrict_oom_score_adj = true
    [plugins."io.containerd.cri.v1.runtime".cni]
      bin_dirs = [%[8]s]
      conf_dir = %[9]q
      max_conf_num = 1
    [plugins."io.containerd.cri.v1.runtime".containerd]
      default_runtime_name = "runc"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
          BinaryName = %[10]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.socket, c.socket+".ttrpc",
		filepath.Join(dir, "opt"), o.sandboxImage, filepath.Join(dir, "certs.d"),
		strings.Join(quoted, ", "), c.cniConf, o.runc)
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(o.binary, "--config", cfgPath, "--log-level", "warn")
	// The shim is found on PATH, next to containerd as its packages install it.
	c.cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(o.shim)+":"+os.Getenv("PATH"))
	c.cmd.Stdout, c.cmd.Stderr = syncBuf{&c.logMu, c.log}, syncBuf{&c.logMu, c.log}
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	c.done = make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(c.done) }()
	if err := c.connect(); err != nil {
		t.Fatalf("containerd: %v\n%s", err, c.logs())
	}
	return c
}

func (c *containerd) connect() error {
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case <-c.done:
			return fmt.Errorf("exited during start-up")
		default:
		}
		if _, err := os.Stat(c.socket); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			rt, err := remote.NewRemoteRuntimeServiceBuilder().WithEndpoint("unix://" + c.socket).
				WithConnectionTimeout(2 * time.Minute).WithTracerProvider(nil).Build(ctx)
			if err == nil {
				_, err = rt.Version(ctx, "")
			}
			var img internalapi.ImageManagerService
			if err == nil {
				img, err = remote.NewRemoteImageServiceBuilder().WithEndpoint("unix://" + c.socket).
					WithConnectionTimeout(5 * time.Minute).WithTracerProvider(nil).Build(ctx)
			}
			cancel()
			if err == nil {
				c.runtime, c.images = rt, img
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("no CRI answer on %s: %w", c.socket, err)
			}
		} else if time.Now().After(deadline) {
			return fmt.Errorf("socket %s did not appear", c.socket)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop stops containerd, then the shims and containers it left (the
// comparison removes its pods; this is for a run that failed half-way), and
// removes its directories.
func (c *containerd) stop(t testing.TB) {
	if c.cmd != nil && c.cmd.Process != nil {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
	for _, p := range processes() {
		if strings.Contains(p.cmdline, c.dir) {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
	// Mounts under the directory (snapshots, shm, sandbox files), deepest first.
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		lines := strings.Split(string(b), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			f := strings.Fields(lines[i])
			if len(f) > 4 && strings.HasPrefix(f[4], c.dir+"/") {
				_ = syscall.Unmount(f[4], syscall.MNT_DETACH)
			}
		}
	}
	if t.Failed() {
		t.Logf("containerd's log:\n%s", c.logs())
	}
	if err := os.RemoveAll(c.dir); err != nil {
		t.Logf("remove containerd's directory: %v", err)
	}
}

func (c *containerd) logs() string {
	c.logMu.Lock()
	defer c.logMu.Unlock()
	return c.log.String()
}

type syncBuf struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w syncBuf) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
