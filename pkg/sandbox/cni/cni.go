// Package cni finds the pod network among the CNI configuration files and
// checks that it can be used. With no configuration at all it supplies a
// built-in network (bridge + host-local + portmap), so a fresh node gives its
// pods addresses without any setup.
package cni

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/record"
)

// BuiltinSource is the Source of the network used when the conf dir is empty.
const BuiltinSource = "built-in"

// Options configures a Manager.
type Options struct {
	ConfDir  string   // where network configuration files are looked for
	BinDirs  []string // where plugin binaries are looked for
	CacheDir string   // libcni's result cache, needed for DEL after a restart
	Builtin  Builtin  // the network used when ConfDir holds no configuration
	// PodCIDRFile keeps the node's pod CIDR the kubelet gave (SetPodCIDR)
	// across restarts: the kubelet only says it again when it changes.
	PodCIDRFile string
}

// Builtin describes the zero-configuration network.
type Builtin struct {
	Name    string // network name
	Bridge  string // Linux bridge device
	Subnet  string // IPv4 CIDR pods get addresses from
	DataDir string // host-local's lease directory, kept under our own root
}

// Network is the pod network in use.
type Network struct {
	Name    string   `json:"name"`
	Source  string   `json:"source"` // the file it came from, or BuiltinSource
	Plugins []string `json:"plugins"`

	list *libcni.NetworkConfigList
	// withoutPortmap is the built-in network for pods that map no ports:
	// portmap would only cost them time.
	withoutPortmap *libcni.NetworkConfigList
}

// Manager tracks the pod network configuration. It re-reads the conf dir when
// the directory or the chosen file changes, noticed on use (a few stat(2)s),
// so there is no watcher goroutine and no polling. A network that failed to
// load is retried on every use, so installing a missing plugin is noticed
// without touching the configuration. Safe for concurrent use.
type Manager struct {
	opts Options
	log  *slog.Logger
	cni  *libcni.CNIConfig
	// masquerade installs the built-in network's NAT rule (replaced in tests).
	masquerade func(subnet string) error
	mu         sync.Mutex
	podCIDR    string // from the kubelet; replaces Builtin.Subnet when set
	loaded     bool   // stamp, net and netErr describe a completed load
	stamp      stamp
	net        *Network
	netErr     error
}

// stamp identifies the state of the conf dir the current result was built from.
type stamp struct {
	dirMod  time.Time
	file    string
	fileMod time.Time
	size    int64
}

// New returns a Manager. It does not touch the network; call Network or Ready.
func New(opts Options, log *slog.Logger) (*Manager, error) {
	m := &Manager{
		opts: opts,
		log:  log,
		cni:  libcni.NewCNIConfigWithCacheDir(opts.BinDirs, opts.CacheDir, nil),

		masquerade: ensureMasquerade,
	}
	if opts.PodCIDRFile != "" {
		var rec podCIDRRecord
		err := record.Load(opts.PodCIDRFile, &rec)
		if err == nil {
			var subnet string
			if subnet, err = builtinSubnet(rec.PodCIDR); err == nil && subnet != "" {
				m.podCIDR = subnet
			}
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Warn("ignoring the recorded pod CIDR", "file", opts.PodCIDRFile, "err", err)
		}
	}
	return m, nil
}

// SetPodCIDR takes the node's pod CIDR(s) from the kubelet
// (UpdateRuntimeConfig; comma-separated when dual-stack). The built-in
// network gives pods started from now on addresses from its IPv4 CIDR
// instead of the configured default subnet, so that nodes of a cluster do
// not hand out the same addresses; pods already running keep theirs. A
// network from the conf dir is the operator's and is left as it is. An
// empty CIDR changes nothing.
func (m *Manager) SetPodCIDR(cidrs string) error {
	if strings.TrimSpace(cidrs) == "" {
		return nil
	}
	subnet, err := builtinSubnet(cidrs)
	if err != nil {
		return err
	}
	if subnet == "" {
		m.log.Warn("the kubelet's pod CIDR has no IPv4 range; the built-in network is IPv4 only and keeps its subnet", "pod_cidr", cidrs)
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if subnet == m.podCIDR {
		return nil
	}
	if m.opts.PodCIDRFile != "" {
		if err := record.Save(m.opts.PodCIDRFile, podCIDRRecord{PodCIDR: subnet}); err != nil {
			return fmt.Errorf("record the pod CIDR: %w", err)
		}
	}
	m.podCIDR, m.loaded = subnet, false // the next use renders the network again
	m.log.Info("pod CIDR set by the kubelet; the built-in network gives new pods addresses from it", "pod_cidr", subnet, "bridge", m.bridge())
	return nil
}

// podCIDRRecord is what PodCIDRFile holds.
type podCIDRRecord struct {
	PodCIDR string `json:"podCIDR"`
}

// PodCIDR is the pod CIDR the kubelet set, "" when none.
func (m *Manager) PodCIDR() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.podCIDR
}

// builtinSubnet picks the IPv4 CIDR among comma-separated cidrs; any that
// does not parse, or leaves no room for pods, is InvalidArgument.
func builtinSubnet(cidrs string) (string, error) {
	var v4 string
	for _, c := range strings.Split(cidrs, ",") {
		c = strings.TrimSpace(c)
		_, ipnet, err := net.ParseCIDR(c)
		if err != nil {
			return "", fmt.Errorf("pod CIDR %q: %w", c, errdefs.ErrInvalidArgument)
		}
		if ones, bits := ipnet.Mask.Size(); bits-ones < 2 {
			return "", fmt.Errorf("pod CIDR %q leaves no room for pod addresses: %w", c, errdefs.ErrInvalidArgument)
		}
		if ipnet.IP.To4() != nil && v4 == "" {
			v4 = ipnet.String()
		}
	}
	return v4, nil
}

// bridge is the built-in network's bridge. Callers hold mu. A bridge
// holds one IPv4 gateway address and the bridge plugin will not replace it
// while pods use it, so the kubelet's pod CIDR gets a bridge of its own,
// named after it: pods already on the default bridge keep their gateway.
func (m *Manager) bridge() string {
	if m.podCIDR == "" {
		return m.opts.Builtin.Bridge
	}
	sum := sha256.Sum256([]byte(m.podCIDR))
	name := m.opts.Builtin.Bridge
	return name[:min(len(name), 10)] + "-" + hex.EncodeToString(sum[:2])
}

// subnet is the built-in network's IPv4 range. Callers hold mu.
func (m *Manager) subnet() string {
	if m.podCIDR != "" {
		return m.podCIDR
	}
	return m.opts.Builtin.Subnet
}

// Network returns the pod network in use, or a *errdefs.NotReadyError saying
// why none is usable.
func (m *Manager) Network(ctx context.Context) (*Network, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, err := m.currentStamp()
	if err != nil {
		return nil, errdefs.NotReady("NetworkPluginNotReady", "read CNI conf dir %s: %w", m.opts.ConfDir, err)
	}
	if m.loaded && st == m.stamp && m.netErr == nil {
		return m.net, nil
	}
	prevErr := m.netErr
	m.loaded, m.stamp = true, st
	m.net, m.netErr = m.load(ctx, st.file)
	switch {
	case m.netErr != nil && (prevErr == nil || prevErr.Error() != m.netErr.Error()):
		m.log.Warn("pod network is not ready", "err", m.netErr)
	case m.netErr == nil:
		m.log.Info("pod network loaded", "name", m.net.Name, "source", m.net.Source, "plugins", m.net.Plugins)
	}
	return m.net, m.netErr
}

// currentStamp looks at the conf dir and picks the first configuration file in
// lexical order ("" when there is none).
func (m *Manager) currentStamp() (stamp, error) {
	var st stamp
	fi, err := os.Stat(m.opts.ConfDir)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	st.dirMod = fi.ModTime()
	files, err := libcni.ConfFiles(m.opts.ConfDir, []string{".conflist", ".conf", ".json"})
	if err != nil {
		return st, err
	}
	if len(files) == 0 {
		return st, nil
	}
	st.file = files[0] // ConfFiles returns them sorted
	if fi, err := os.Stat(st.file); err == nil {
		st.fileMod, st.size = fi.ModTime(), fi.Size()
	}
	return st, nil
}

// load reads file (or the built-in network when file is "") and checks that
// every plugin it names is installed and speaks its CNI version.
func (m *Manager) load(ctx context.Context, file string) (*Network, error) {
	var (
		list   *libcni.NetworkConfigList
		source = file
		err    error
	)
	if file == "" {
		source = BuiltinSource
		list, err = m.builtin(true)
	} else {
		list, err = readFile(file)
	}
	if err != nil {
		return nil, errdefs.NotReady("NetworkPluginNotReady", "load CNI network from %s: %w", source, err)
	}
	if _, err := m.cni.ValidateNetworkList(ctx, list); err != nil {
		return nil, errdefs.NotReady("NetworkPluginNotReady", "CNI network %q from %s is unusable: %w", list.Name, source, err)
	}
	n := &Network{Name: list.Name, Source: source, list: list}
	for _, p := range list.Plugins {
		n.Plugins = append(n.Plugins, p.Network.Type)
	}
	if file == "" {
		if n.withoutPortmap, err = m.builtin(false); err != nil {
			return nil, errdefs.NotReady("NetworkPluginNotReady", "built-in network: %w", err)
		}
		if err := m.masquerade(m.subnet()); err != nil {
			return nil, errdefs.NotReady("NetworkPluginNotReady", "built-in network: %w", err)
		}
		m.log.Info("no CNI configuration found; pods use the built-in network",
			"conf_dir", m.opts.ConfDir, "bridge", m.bridge(), "subnet", m.subnet())
	}
	return n, nil
}

// readFile loads a .conflist, or a single-plugin .conf wrapped into a list.
func readFile(file string) (*libcni.NetworkConfigList, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var probe struct {
		Plugins json.RawMessage `json:"plugins"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("parse %s: %w", file, err)
	}
	if probe.Plugins != nil {
		return libcni.NetworkConfFromFile(file)
	}
	single, err := libcni.NetworkPluginConfFromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", file, err)
	}
	return libcni.ConfListFromConf(single) //nolint:staticcheck // single-plugin .conf files are still common
}

// builtin renders the zero-configuration network list: a bridge with
// host-local addresses, and portmap when the pod maps ports. Masquerading is
// one static rule for the whole subnet (ensureMasquerade) rather than the
// bridge plugin's per-pod iptables chain, which made every pod start and
// stop pay for several iptables runs.
func (m *Manager) builtin(portmap bool) (*libcni.NetworkConfigList, error) {
	b := m.opts.Builtin
	plugins := []any{
		map[string]any{
			"type":        "bridge",
			"bridge":      m.bridge(),
			"isGateway":   true,
			"ipMasq":      false,
			"hairpinMode": true,
			"ipam": map[string]any{
				"type":    "host-local",
				"ranges":  [][]map[string]string{{{"subnet": m.subnet()}}},
				"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
				"dataDir": b.DataDir,
			},
		},
	}
	if portmap {
		plugins = append(plugins, map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}})
	}
	conf := map[string]any{"cniVersion": "1.0.0", "name": b.Name, "plugins": plugins}
	data, err := json.Marshal(conf)
	if err != nil {
		return nil, err
	}
	return libcni.NetworkConfFromBytes(data)
}
