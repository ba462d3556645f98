package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestDefaultIsValid(t *testing.T) {
	warnings, err := Default().Validate()
	if err != nil || len(warnings) != 0 {
		t.Fatalf("Default().Validate() = %v, %v; want no warnings and no error", warnings, err)
	}
}

func TestValidateNamesTheKey(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		key    string
	}{
		{"relative listen", func(c *Config) { c.Listen = "x.sock" }, "listen"},
		{"relative root", func(c *Config) { c.Root = "r" }, "root"},
		{"root equals state", func(c *Config) { c.State = c.Root + "/" }, "root and state"},
		{"log level", func(c *Config) { c.LogLevel = "loud" }, "log_level"},
		{"log format", func(c *Config) { c.LogFormat = "xml" }, "log_format"},
		{"cgroup driver", func(c *Config) { c.CgroupDriver = "cgroupv3" }, "cgroup_driver"},
		{"bad pinned glob", func(c *Config) { c.Image.PinnedImages = []string{"registry.k8s.io/pause:["} }, "image.pinned_images"},
		{"relative image store", func(c *Config) { c.Image.ImageStore = "images" }, "image.image_store"},
		{"bad handler name", func(c *Config) { c.Runtime.Handlers = map[string]HandlerConfig{"Crun!": {Path: "crun"}} }, "runtime.handlers"},
		{"handler named like the default", func(c *Config) { c.Runtime.Handlers = map[string]HandlerConfig{"runc": {Path: "runc"}} }, "runtime.handlers.runc"},
		{"handler without path", func(c *Config) { c.Runtime.Handlers = map[string]HandlerConfig{"crun": {}} }, "runtime.handlers.crun.path"},
		{"empty runtime", func(c *Config) { c.Runtime.Path = "" }, "runtime.path"},
		{"empty monitor", func(c *Config) { c.Runtime.MonitorPath = "" }, "runtime.monitor_path"},
		{"no bin dirs", func(c *Config) { c.Network.BinDirs = nil }, "network.bin_dirs"},
		{"relative bin dir", func(c *Config) { c.Network.BinDirs = []string{"cni"} }, "network.bin_dirs"},
		{"bad subnet", func(c *Config) { c.Network.DefaultSubnet = "10.0.0.0/33" }, "network.default_subnet"},
		{"tiny subnet", func(c *Config) { c.Network.DefaultSubnet = "10.0.0.0/32" }, "network.default_subnet"},
		{"streaming address", func(c *Config) { c.Streaming.Address = "localhost" }, "streaming.address"},
		{"streaming port", func(c *Config) { c.Streaming.Port = 70000 }, "streaming.port"},
		{"cert without key", func(c *Config) { c.Streaming.TLSCert = "/etc/cert.pem" }, "streaming.tls_cert and streaming.tls_key"},
		{"client CA without cert", func(c *Config) { c.Streaming.TLSClientCA = "/etc/ca.pem" }, "streaming.tls_client_ca"},
		{"idle timeout", func(c *Config) { c.Streaming.IdleTimeout = "forever" }, "streaming.idle_timeout"},
		{"metrics address", func(c *Config) { c.Metrics.Address = "9090" }, "metrics.address"},
		{"profiling without metrics", func(c *Config) { c.Metrics.Address, c.Metrics.Profiling = "", true }, "metrics.profiling"},
		{"long bridge", func(c *Config) { c.Network.DefaultBridge = "a-very-long-bridge-name" }, "network.default_bridge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(c)
			before := *c
			_, err := c.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), tc.key) {
				t.Fatalf("Validate() = %v; want an error starting with %q", err, tc.key)
			}
			if !reflect.DeepEqual(before, *c) {
				t.Fatalf("Validate changed the config")
			}
		})
	}
}

func TestValidateWarnsOnPublicSubnet(t *testing.T) {
	c := Default()
	c.Network.DefaultSubnet = "8.8.0.0/16"
	warnings, err := c.Validate()
	if err != nil || len(warnings) != 1 {
		t.Fatalf("Validate() = %v, %v; want one warning", warnings, err)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadLayersFileAndDropIns(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "config.toml")
	write(t, main, "log_level = \"debug\"\nroot = \"/srv/a\"\n[network]\nconf_dir = \"/srv/net\"\n")
	write(t, filepath.Join(dir, "config.d", "20-b.toml"), "root = \"/srv/b\"\n")
	write(t, filepath.Join(dir, "config.d", "10-a.toml"), "root = \"/srv/ignored\"\nlog_format = \"json\"\n")
	write(t, filepath.Join(dir, "config.d", "notes.txt"), "not toml at all [")

	cfg, read, err := Load(Sources{File: main, DropInDir: filepath.Join(dir, "config.d")})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LogLevel != "debug" || cfg.Root != "/srv/b" || cfg.LogFormat != "json" || cfg.Network.ConfDir != "/srv/net" {
		t.Fatalf("layering wrong: %+v", cfg)
	}
	if cfg.Network.DefaultBridge != Default().Network.DefaultBridge {
		t.Fatalf("unset keys must keep their defaults, got bridge %q", cfg.Network.DefaultBridge)
	}
	if len(read) != 3 || !strings.HasSuffix(read[1], "10-a.toml") || !strings.HasSuffix(read[2], "20-b.toml") {
		t.Fatalf("files read = %v; want main, 10-a, 20-b", read)
	}
}

func TestLoadMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.toml")
	if _, read, err := Load(Sources{File: missing}); err != nil || len(read) != 0 {
		t.Fatalf("optional missing file: read=%v err=%v; want defaults", read, err)
	}
	if _, _, err := Load(Sources{File: missing, FileRequired: true}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("required missing file: err=%v; want it to name the file", err)
	}
}

func TestLoadErrorsNameFileAndLine(t *testing.T) {
	for _, tc := range []struct {
		name, content, want string
	}{
		{"unknown top-level key", "log_level = \"info\"\nlisten_addr = \"/x\"\n", ":2: unknown key \"listen_addr\""},
		{"unknown nested key", "[network]\n\nconf_dir = \"/a\"\nbin_dir = \"/b\"\n", ":4: unknown key \"network.bin_dir\""},
		{"unknown table", "[imagez]\nx = 1\n", "unknown key"},
		{"syntax", "root = \"/a\"\nstate = \n", ":2:"},
		{"wrong type", "root = \"/a\"\n\nlog_level = 3\n", "log_level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "bad.toml")
			write(t, f, tc.content)
			_, _, err := Load(Sources{File: f})
			if err == nil || !strings.Contains(err.Error(), f) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load() error = %v; want it to name %s and contain %q", err, f, tc.want)
			}
		})
	}
}

func TestWriteTOMLRoundTrips(t *testing.T) {
	c := Default()
	c.Image.RegistriesConf = "/etc/x/registries.conf"
	c.Network.BinDirs = []string{"/a", "/b c"}
	c.Runtime.Handlers = map[string]HandlerConfig{"crun": {Path: "/usr/bin/crun"}, "kata": {Path: "kata-runtime"}}
	var buf bytes.Buffer
	if err := c.WriteTOML(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "# Unix socket the CRI gRPC server listens on") || !strings.Contains(out, "[network]") {
		t.Fatalf("output lacks docs or tables:\n%s", out)
	}
	var back Config
	md, err := toml.Decode(out, &back)
	if err != nil {
		t.Fatalf("printed config does not parse: %v\n%s", err, out)
	}
	if len(md.Undecoded()) != 0 || !reflect.DeepEqual(*c, back) {
		t.Fatalf("round trip differs:\nwant %+v\ngot  %+v", *c, back)
	}
}
