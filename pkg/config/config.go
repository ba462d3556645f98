// Package config is the daemon's configuration as plain data: one typed TOML
// tree with built-in defaults, a loader for a main file plus drop-ins, and a
// validator that reports problems without changing anything. Managers are
// built from it in pkg/daemon, never here.
package config

import (
	"fmt"
	"net"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Config is the whole configuration. Every field carries a `doc` tag: the
// `cri-runtime config` subcommand prints it above the key.
type Config struct {
	Listen       string `toml:"listen" json:"listen" doc:"Unix socket the CRI gRPC server listens on (kubelet --container-runtime-endpoint)."`
	Root         string `toml:"root" json:"root" doc:"Directory for persistent state and the image store."`
	State        string `toml:"state" json:"state" doc:"Directory for volatile state (sockets, pinned namespaces); usually on tmpfs."`
	LogLevel     string `toml:"log_level" json:"log_level" doc:"Log level: debug, info, warn or error."`
	LogFormat    string `toml:"log_format" json:"log_format" doc:"Log format: text or json."`
	CgroupDriver string `toml:"cgroup_driver" json:"cgroup_driver" doc:"Cgroup driver reported to the kubelet and used for pods: cgroupfs or systemd (systemd must be init)."`

	Image     ImageConfig     `toml:"image" json:"image" doc:"Image pulls and the image store."`
	Runtime   RuntimeConfig   `toml:"runtime" json:"runtime" doc:"The OCI runtime and the per-container monitor."`
	Network   NetworkConfig   `toml:"network" json:"network" doc:"Pod networking through CNI."`
	Streaming StreamingConfig `toml:"streaming" json:"streaming" doc:"The HTTP server Exec, Attach and PortForward stream through (kubectl exec/attach/port-forward)."`
	Metrics   MetricsConfig   `toml:"metrics" json:"metrics" doc:"Prometheus metrics."`
}

// StreamingConfig configures the streaming server.
type StreamingConfig struct {
	Address     string `toml:"address" json:"address" doc:"IP address the streaming server listens on. The kubelet reaches it locally; keep it on loopback unless TLS is set up."`
	Port        int    `toml:"port" json:"port" doc:"TCP port of the streaming server; 0 picks a free one."`
	TLSCert     string `toml:"tls_cert" json:"tls_cert" doc:"PEM certificate for serving streams over HTTPS; empty serves plain HTTP."`
	TLSKey      string `toml:"tls_key" json:"tls_key" doc:"PEM private key of tls_cert."`
	TLSClientCA string `toml:"tls_client_ca" json:"tls_client_ca" doc:"PEM CA bundle; when set, clients must present a certificate it signed."`
	IdleTimeout string `toml:"idle_timeout" json:"idle_timeout" doc:"A stream connection idle for this long is closed (Go duration, e.g. 4h)."`
}

// MetricsConfig configures the Prometheus endpoint.
type MetricsConfig struct {
	Address   string `toml:"address" json:"address" doc:"host:port serving Prometheus metrics at /metrics; empty disables it."`
	Profiling bool   `toml:"profiling" json:"profiling" doc:"also serve Go's runtime profiles (pprof) at /debug/pprof/ on the metrics address; needs address. Off by default: profiles show the daemon's internals to whoever reaches the address."`
}

// ImageConfig configures containers/image.
type ImageConfig struct {
	RegistriesConf  string   `toml:"registries_conf" json:"registries_conf" doc:"containers registries.conf; empty means the system one (/etc/containers/registries.conf)."`
	SignaturePolicy string   `toml:"signature_policy" json:"signature_policy" doc:"containers policy.json; empty means the system one, or accept-anything with a warning when none exists."`
	StorageDriver   string   `toml:"storage_driver" json:"storage_driver" doc:"containers/storage driver; empty means storage.conf's, else overlay."`
	StorageOptions  []string `toml:"storage_options" json:"storage_options" doc:"containers/storage driver options (e.g. overlay.mountopt=nodev); empty means storage.conf's."`
	ImageStore      string   `toml:"image_store" json:"image_store" doc:"Separate directory (often another disk) for image layers, with writable layers staying under root: a split image filesystem. Empty means storage.conf's imagestore, else none."`
	PinnedImages    []string `toml:"pinned_images" json:"pinned_images" doc:"Images reported as pinned, which the kubelet never garbage-collects: names or globs (e.g. registry.k8s.io/pause:*)."`
}

// RuntimeConfig names the programs that run containers.
type RuntimeConfig struct {
	Path        string `toml:"path" json:"path" doc:"Default OCI runtime binary; a bare name is looked up on PATH."`
	MonitorPath string `toml:"monitor_path" json:"monitor_path" doc:"conmon, the per-container monitor; a bare name is looked up on PATH."`
	// Handlers are further OCI runtimes, chosen per pod by its RuntimeClass
	// handler name. The default runtime is the handler named after its
	// binary (e.g. "runc"), and "" (no RuntimeClass).
	Handlers map[string]HandlerConfig `toml:"handlers" json:"handlers,omitempty" doc:"More OCI runtimes, chosen per pod by RuntimeClass handler, e.g. [runtime.handlers.crun] path = \"crun\"."`
}

// HandlerConfig is one RuntimeClass handler.
type HandlerConfig struct {
	Path string `toml:"path" json:"path" doc:"OCI runtime binary; a bare name is looked up on PATH."`
}

// DefaultHandler is the name the default runtime is offered under.
func (c *RuntimeConfig) DefaultHandler() string { return filepath.Base(c.Path) }

// NetworkConfig configures CNI.
type NetworkConfig struct {
	ConfDir       string   `toml:"conf_dir" json:"conf_dir" doc:"CNI network configuration directory; the first .conflist/.conf/.json file in lexical order is the pod network."`
	BinDirs       []string `toml:"bin_dirs" json:"bin_dirs" doc:"Directories searched for CNI plugin binaries."`
	DefaultSubnet string   `toml:"default_subnet" json:"default_subnet" doc:"Subnet of the built-in network used while conf_dir holds no network configuration."`
	DefaultBridge string   `toml:"default_bridge" json:"default_bridge" doc:"Linux bridge of the built-in network."`
}

// handlerName is what a RuntimeClass handler may be called (a DNS label,
// more or less).
var handlerName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// Default returns the built-in configuration: a daemon started with no config
// file at all runs with exactly this.
func Default() *Config {
	return &Config{
		Listen:       "/run/cri-runtime/cri-runtime.sock",
		Root:         "/var/lib/cri-runtime",
		State:        "/run/cri-runtime",
		LogLevel:     "info",
		LogFormat:    "text",
		CgroupDriver: CgroupfsDriver,
		Runtime: RuntimeConfig{
			Path:        "runc",
			MonitorPath: "conmon",
		},
		Network: NetworkConfig{
			ConfDir:       "/etc/cni/net.d",
			BinDirs:       []string{"/usr/lib/cni", "/opt/cni/bin"},
			DefaultSubnet: "10.77.0.0/16",
			DefaultBridge: "crirt0",
		},
		Streaming: StreamingConfig{
			Address:     "127.0.0.1",
			Port:        0,
			IdleTimeout: "4h",
		},
	}
}

// The cgroup drivers a pod's cgroups can be managed with.
const (
	CgroupfsDriver = "cgroupfs"
	SystemdDriver  = "systemd"
)

// Validate checks the configuration and changes nothing. Warnings describe
// settings that work but are probably not what the operator meant; the error
// names the first key that cannot work.
func (c *Config) Validate() (warnings []string, err error) {
	for _, p := range []struct{ key, val string }{
		{"listen", c.Listen}, {"root", c.Root}, {"state", c.State}, {"network.conf_dir", c.Network.ConfDir},
	} {
		if !filepath.IsAbs(p.val) {
			return nil, fmt.Errorf("%s: %q must be an absolute path", p.key, p.val)
		}
	}
	if filepath.Clean(c.Root) == filepath.Clean(c.State) {
		return nil, fmt.Errorf("root and state: both are %q; they must be different directories", c.Root)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return nil, fmt.Errorf("log_level: %q is not one of debug, info, warn, error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return nil, fmt.Errorf("log_format: %q is not one of text, json", c.LogFormat)
	}
	switch c.CgroupDriver {
	case CgroupfsDriver, SystemdDriver:
	default:
		return nil, fmt.Errorf("cgroup_driver: %q is not one of %s, %s", c.CgroupDriver, CgroupfsDriver, SystemdDriver)
	}
	if c.Image.ImageStore != "" && !filepath.IsAbs(c.Image.ImageStore) {
		return nil, fmt.Errorf("image.image_store: %q must be an absolute path", c.Image.ImageStore)
	}
	for _, p := range c.Image.PinnedImages {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("image.pinned_images: %q: %w", p, err)
		}
	}
	if c.Runtime.Path == "" {
		return nil, fmt.Errorf("runtime.path: must not be empty")
	}
	for name, h := range c.Runtime.Handlers {
		if !handlerName.MatchString(name) {
			return nil, fmt.Errorf("runtime.handlers: %q is not a valid handler name (lowercase letters, digits, '-', '_', '.')", name)
		}
		if name == c.Runtime.DefaultHandler() {
			return nil, fmt.Errorf("runtime.handlers.%s: the default runtime already has this name", name)
		}
		if h.Path == "" {
			return nil, fmt.Errorf("runtime.handlers.%s.path: must not be empty", name)
		}
	}
	if c.Runtime.MonitorPath == "" {
		return nil, fmt.Errorf("runtime.monitor_path: must not be empty")
	}
	if len(c.Network.BinDirs) == 0 {
		return nil, fmt.Errorf("network.bin_dirs: at least one directory is needed")
	}
	for _, d := range c.Network.BinDirs {
		if !filepath.IsAbs(d) {
			return nil, fmt.Errorf("network.bin_dirs: %q must be an absolute path", d)
		}
	}
	ip, subnet, err := net.ParseCIDR(c.Network.DefaultSubnet)
	if err != nil {
		return nil, fmt.Errorf("network.default_subnet: %w", err)
	}
	if ones, bits := subnet.Mask.Size(); bits-ones < 2 {
		return nil, fmt.Errorf("network.default_subnet: %s leaves no room for pod addresses", c.Network.DefaultSubnet)
	}
	if !ip.IsPrivate() {
		warnings = append(warnings, fmt.Sprintf("network.default_subnet: %s is not a private range", c.Network.DefaultSubnet))
	}
	if b := c.Network.DefaultBridge; b == "" || len(b) > 15 || strings.ContainsAny(b, "/ \t") {
		return nil, fmt.Errorf("network.default_bridge: %q is not a valid interface name (1-15 characters, no '/' or spaces)", b)
	}
	if net.ParseIP(c.Streaming.Address) == nil {
		return nil, fmt.Errorf("streaming.address: %q is not an IP address", c.Streaming.Address)
	}
	if c.Streaming.Port < 0 || c.Streaming.Port > 65535 {
		return nil, fmt.Errorf("streaming.port: %d is not a TCP port", c.Streaming.Port)
	}
	if (c.Streaming.TLSCert == "") != (c.Streaming.TLSKey == "") {
		return nil, fmt.Errorf("streaming.tls_cert and streaming.tls_key: set both or neither")
	}
	if c.Streaming.TLSClientCA != "" && c.Streaming.TLSCert == "" {
		return nil, fmt.Errorf("streaming.tls_client_ca: needs streaming.tls_cert and streaming.tls_key")
	}
	if d, err := time.ParseDuration(c.Streaming.IdleTimeout); err != nil || d <= 0 {
		return nil, fmt.Errorf("streaming.idle_timeout: %q is not a positive duration", c.Streaming.IdleTimeout)
	}
	if !net.ParseIP(c.Streaming.Address).IsLoopback() && c.Streaming.TLSCert == "" {
		warnings = append(warnings, fmt.Sprintf("streaming.address: %s is reachable from the network and streams are not encrypted (no tls_cert)", c.Streaming.Address))
	}
	if a := c.Metrics.Address; a != "" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("metrics.address: %w", err)
		}
	}
	if c.Metrics.Profiling && c.Metrics.Address == "" {
		return nil, fmt.Errorf("metrics.profiling: needs metrics.address, where the profiles are served")
	}
	return warnings, nil
}

// StreamingIdleTimeout is streaming.idle_timeout, which Validate checked.
func (c *Config) StreamingIdleTimeout() time.Duration {
	d, _ := time.ParseDuration(c.Streaming.IdleTimeout)
	return d
}
