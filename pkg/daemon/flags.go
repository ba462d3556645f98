package daemon

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/cri-runtime/cri-runtime/pkg/config"
)

// options are the command line: where the configuration comes from, and the
// flags that override it.
type options struct {
	command string // "serve", "config", "version" or "pause"
	// pauseCgroup is the cgroup a pod's init joins (the pause command).
	pauseCgroup string
	sources     config.Sources
	overrides   []func(*config.Config)
}

const usageText = `Usage: cri-runtime [command] [flags]

A Kubernetes CRI runtime. With no command it serves the CRI on a unix socket.

Commands:
  serve     serve the CRI (the default)
  config    print the effective configuration as commented TOML
  version   print the versions of cri-runtime and the programs it runs

Flags override the configuration file, which overrides built-in defaults:
`

// parseArgs reads args (without the program name). Flag errors name the flag.
func parseArgs(args []string, stderr io.Writer) (*options, error) {
	o := &options{command: "serve"}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		o.command, args = args[0], args[1:]
	}
	switch o.command {
	case "serve", "config", "version":
	case "pause":
		if len(args) > 1 {
			return nil, fmt.Errorf("pause takes one argument at most: the cgroup to join")
		}
		o.pauseCgroup = strings.Join(args, "")
		return o, nil
	default:
		return nil, fmt.Errorf("unknown command %q (want serve, config or version)", o.command)
	}

	fs := flag.NewFlagSet("cri-runtime", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	configFile := fs.String("config", config.DefaultFile, "configuration file (TOML); read when present, required when given")
	dropIns := fs.String("config-dir", config.DefaultDropInDir, "drop-in directory: *.toml applied in lexical order over the configuration file")

	// Each override flag sets one config field, but only when given.
	type override struct {
		name, usage string
		set         func(*config.Config, string)
	}
	for _, ov := range []override{
		{"listen", "unix socket to serve the CRI on", func(c *config.Config, v string) { c.Listen = v }},
		{"root", "directory for persistent state and the image store", func(c *config.Config, v string) { c.Root = v }},
		{"state", "directory for volatile state", func(c *config.Config, v string) { c.State = v }},
		{"registries-conf", "containers registries.conf", func(c *config.Config, v string) { c.Image.RegistriesConf = v }},
		{"signature-policy", "containers policy.json", func(c *config.Config, v string) { c.Image.SignaturePolicy = v }},
		{"cni-conf-dir", "CNI network configuration directory", func(c *config.Config, v string) { c.Network.ConfDir = v }},
		{"cni-bin-dir", "colon-separated CNI plugin directories", func(c *config.Config, v string) { c.Network.BinDirs = strings.Split(v, ":") }},
		{"runtime", "default OCI runtime binary", func(c *config.Config, v string) { c.Runtime.Path = v }},
		{"monitor", "conmon binary", func(c *config.Config, v string) { c.Runtime.MonitorPath = v }},
		{"cgroup-driver", "cgroupfs or systemd", func(c *config.Config, v string) { c.CgroupDriver = v }},
		{"metrics-address", "host:port to serve Prometheus metrics on (empty: off)", func(c *config.Config, v string) { c.Metrics.Address = v }},
		{"log-level", "debug, info, warn or error", func(c *config.Config, v string) { c.LogLevel = v }},
		{"log-format", "text or json", func(c *config.Config, v string) { c.LogFormat = v }},
	} {
		fs.Func(ov.name, ov.usage, func(v string) error {
			o.overrides = append(o.overrides, func(c *config.Config) { ov.set(c, v) })
			return nil
		})
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	o.sources = config.Sources{File: *configFile, FileRequired: explicit["config"], DropInDir: *dropIns}
	return o, nil
}

// loadConfig builds the effective configuration: defaults, files, flags.
func (o *options) loadConfig() (*config.Config, []string, error) {
	cfg, _, err := config.Load(o.sources)
	if err != nil {
		return nil, nil, err
	}
	for _, set := range o.overrides {
		set(cfg)
	}
	warnings, err := cfg.Validate()
	if err != nil {
		return nil, nil, fmt.Errorf("invalid configuration: %w", err)
	}
	return cfg, warnings, nil
}
