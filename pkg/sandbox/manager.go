package sandbox

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/cgroup"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/events"
	"github.com/cri-runtime/cri-runtime/pkg/handover"
	"github.com/cri-runtime/cri-runtime/pkg/keylock"
	"github.com/cri-runtime/cri-runtime/pkg/sandbox/cni"
	"github.com/cri-runtime/cri-runtime/pkg/store"
)

// Network attaches pods to the pod network and detaches them.
type Network interface {
	Attach(ctx context.Context, pod cni.Pod) (*cni.Attachment, error)
	Detach(ctx context.Context, pod cni.Pod, att *cni.Attachment) error
	// DetachCurrent runs DEL with the network configured now, for a pod
	// whose attachment was never recorded.
	DetachCurrent(ctx context.Context, pod cni.Pod) error
}

// Options configure a Manager.
type Options struct {
	Root, State  string // the daemon's --root and --state
	CgroupDriver cgroup.Driver
	Network      Network
	HostResolv   string // the host's resolv.conf, for pods without DNS settings
	// PauseBinary is run as "PauseBinary pause" to be the init of pods whose
	// containers share a PID namespace: normally the daemon's own binary.
	PauseBinary string
	// Events receives the pods' lifecycle events; may be nil.
	Events *events.Broker
}

// createTimeout bounds one RunPodSandbox's work, which goes on after the
// client gives up (so a retry can receive the pod).
const createTimeout = 4 * time.Minute

// Manager runs pod sandboxes. All methods are safe for concurrent use;
// operations on one pod are serialized, different pods proceed in parallel.
type Manager struct {
	opts Options
	log  *slog.Logger

	// store holds the records; every change goes through it (save, then
	// publish) and its pod state machine (transitions).
	store *store.Store[Sandbox, State]

	mu       sync.Mutex
	byKey    map[string]string // metadata key → ID
	handover handover.Group    // RunPodSandboxes in flight or unreceived, by metadata key
	locks    keylock.Locks     // per-pod operation locks

	samples cgroup.Sampler
}

// New loads the pods recorded under opts.Root. It changes nothing: Recover
// settles what the daemon's last run left.
func New(opts Options, log *slog.Logger) (*Manager, error) {
	if opts.HostResolv == "" {
		opts.HostResolv = "/etc/resolv.conf"
	}
	m := &Manager{opts: opts, log: log, byKey: map[string]string{},
		store: store.New(filepath.Join(opts.Root, "sandboxes"), kind)}
	if err := m.store.Load(log); err != nil {
		return nil, fmt.Errorf("load pods: %w", err)
	}
	for _, sb := range m.store.List(nil) {
		m.byKey[sb.Config.Metadata.key()] = sb.ID
	}
	return m, nil
}

// Recover settles, once at start-up before serving, what the daemon's last
// run left: it undoes the RunPodSandboxes and finishes the
// RemovePodSandboxes that were cut short, and removes what no record owns.
// A pod whose namespaces are gone (the host rebooted and --state was on
// tmpfs) is marked NotReady, and a NotReady pod's addresses are released
// from the persisted network configuration. Run it before the containers'
// Recover.
func (m *Manager) Recover(ctx context.Context) error {
	pods := m.store.List(nil)
	for _, sb := range pods {
		if sb.State == creating {
			m.undoInterrupted(ctx, sb)
			continue
		}
		if sb.Removing {
			// Its containers went before it was marked; finish the rest.
			if err := m.detach(ctx, sb); err != nil {
				m.log.Warn("finish an interrupted pod removal: CNI DEL", "pod", sb.ID, "err", err)
			}
			m.stopPause(sb)
			if err := m.removeLocked(sb); err != nil {
				// Still listed: RemovePodSandbox may finish it.
				m.log.Warn("finish an interrupted pod removal", "pod", sb.ID, "err", err)
			} else {
				m.log.Info("finished removing a pod whose removal was interrupted", "pod", sb.ID)
			}
			continue
		}
		if sb.State == Ready && !m.namespacesPresent(sb) {
			m.log.Warn("pod lost its namespaces (reboot?); marking it not ready", "pod", sb.ID)
			// The namespaces are gone whether or not this is saved.
			next, err := m.store.UpdateUnsaved(sb.ID, func(sb *Sandbox) error { sb.State = NotReady; return nil })
			if err != nil {
				m.log.Warn("save pod", "pod", sb.ID, "err", err)
			}
			if next != nil {
				sb = next
			}
		}
		if sb.State == NotReady && !sb.Detached && !sb.Config.HostNetwork {
			// A stop cut short, or lost namespaces: the addresses go back.
			if err := m.detach(ctx, sb); err != nil {
				m.log.Warn("release the network of a stopped pod", "pod", sb.ID, "err", err)
			} else {
				m.log.Info("ran the CNI DEL a stopped pod still owed", "pod", sb.ID)
			}
		}
	}
	m.removeOrphanDirs()
	m.log.Info("pods loaded", "count", len(pods))
	return nil
}

// removeOrphanDirs deletes pod state directories that no record owns: what
// a RunPodSandbox interrupted before its record was written left behind.
// Their mounts (namespace pins, /dev/shm) are taken down first.
func (m *Manager) removeOrphanDirs() {
	dir := filepath.Join(m.opts.State, "sandboxes")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if m.store.Contains(e.Name()) || !e.IsDir() {
			continue
		}
		orphan := &Sandbox{ID: e.Name(), Dir: filepath.Join(dir, e.Name())}
		err := unmountShm(orphan.Dir)
		if err == nil {
			err = m.unpinAll(orphan)
		}
		if err == nil {
			err = os.RemoveAll(orphan.Dir)
		}
		if err != nil {
			m.log.Warn("remove state of an unrecorded pod", "pod", orphan.ID, "err", err)
			continue
		}
		m.log.Info("removed state of an unrecorded pod", "pod", orphan.ID)
	}
}

func (m *Manager) namespacesPresent(sb *Sandbox) bool {
	for _, p := range sb.Namespaces {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

// lock serializes operations on one pod.
func (m *Manager) lock(id string) func() { return m.locks.Lock(id) }

// Run creates a ready pod. A second Run with the same metadata fails with
// AlreadyExists naming the pod, except when the client that asked first gave
// up before receiving it: then the retry receives that pod. A Run arriving
// while the same metadata is still being created waits for it.
func (m *Manager) Run(ctx context.Context, cfg Config) (*Sandbox, error) {
	if err := m.validate(&cfg); err != nil {
		return nil, err
	}
	key := cfg.Metadata.key()
	taken := func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		if id, ok := m.byKey[key]; ok {
			return fmt.Errorf("pod sandbox %s already exists for %s/%s (uid %s, attempt %d): %w",
				id, cfg.Metadata.Namespace, cfg.Metadata.Name, cfg.Metadata.UID, cfg.Metadata.Attempt, errdefs.ErrAlreadyExists)
		}
		return nil
	}
	id, err := m.handover.Do(ctx, key, createTimeout, taken, func(ctx context.Context) (string, error) {
		sb, err := m.create(ctx, cfg)
		if err != nil {
			return "", err
		}
		// Once the pod can be looked up.
		m.opts.Events.Publish(events.Event{Type: events.Created, ContainerID: sb.ID, PodID: sb.ID})
		m.opts.Events.Publish(events.Event{Type: events.Started, ContainerID: sb.ID, PodID: sb.ID})
		return sb.ID, nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("run pod sandbox %s/%s: %w (the pod is still being created; a retry will receive it)", cfg.Metadata.Namespace, cfg.Metadata.Name, err)
		}
		return nil, err
	}
	return m.Get(id)
}

func (m *Manager) validate(cfg *Config) error {
	own := map[string]bool{netNS.name: !cfg.HostNetwork, ipcNS.name: !cfg.HostIPC, utsNS.name: !cfg.HostNetwork}
	if err := checkSysctls(cfg.Sysctls, own); err != nil {
		return err
	}
	for _, pm := range cfg.PortMappings {
		switch pm.Protocol {
		case "tcp", "udp", "sctp":
		default:
			return fmt.Errorf("port mapping protocol %q: %w", pm.Protocol, errdefs.ErrInvalidArgument)
		}
		if pm.ContainerPort <= 0 || pm.ContainerPort > 65535 || pm.HostPort < 0 || pm.HostPort > 65535 {
			return fmt.Errorf("port mapping %d→%d out of range: %w", pm.HostPort, pm.ContainerPort, errdefs.ErrInvalidArgument)
		}
	}
	if _, err := bandwidth(cfg.Annotations); err != nil {
		return err
	}
	if _, err := m.opts.CgroupDriver.PodCgroup(cfg.CgroupParent, "000000000000"); err != nil {
		return err
	}
	if s, ok := cfg.Annotations[ShmSizeAnnotation]; ok {
		if n, err := strconv.ParseInt(s, 10, 64); err != nil || n <= 0 {
			return fmt.Errorf("annotation %s=%q is not a positive number of bytes: %w", ShmSizeAnnotation, s, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// hostname is the pod's hostname: as configured, else (and always for
// host-network pods) the host's own, as containerd and CRI-O do. The pod's
// name is no fallback: names may be longer than a hostname can be.
func (m *Manager) hostname(cfg Config) string {
	if cfg.Hostname != "" && !cfg.HostNetwork {
		return cfg.Hostname
	}
	h, _ := os.Hostname()
	return h
}

func (m *Manager) unpinAll(sb *Sandbox) error {
	var first error
	for _, k := range []nsKind{netNS, ipcNS, utsNS, pidNS, userNS} {
		if err := unpin(filepath.Join(sb.Dir, "ns", k.name)); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// undoInterrupted takes down a pod whose RunPodSandbox was cut short (the
// daemon died): its network through CNI DEL with the network in use (the
// stored configuration was not saved yet), its init, mounts, directory,
// the cgroup we made, and its record. Every step tolerates what never
// happened.
func (m *Manager) undoInterrupted(ctx context.Context, sb *Sandbox) {
	for kind := range map[string]bool{netNS.name: !sb.Config.HostNetwork, ipcNS.name: !sb.Config.HostIPC, utsNS.name: !sb.Config.HostNetwork} {
		sb.Namespaces[kind] = filepath.Join(sb.Dir, "ns", kind)
	}
	if !sb.Config.HostNetwork {
		if err := m.opts.Network.DetachCurrent(ctx, m.cniPod(sb)); err != nil {
			m.log.Warn("undo interrupted pod: CNI DEL", "pod", sb.ID, "err", err)
		}
	}
	m.stopPause(sb)
	steps := []func() error{
		func() error { return unmountShm(sb.Dir) },
		func() error { return m.unpinAll(sb) },
		func() error { return os.RemoveAll(sb.Dir) },
		func() error {
			if sb.CgroupCreated == "" {
				return nil
			}
			return cgroup.Remove(sb.CgroupParent, sb.CgroupCreated)
		},
		func() error { return m.store.Delete(sb.ID) },
	}
	defer func() {
		m.mu.Lock()
		if key := sb.Config.Metadata.key(); m.byKey[key] == sb.ID {
			delete(m.byKey, key)
		}
		m.mu.Unlock()
	}()
	for _, step := range steps {
		if err := step(); err != nil {
			// Not listed: the next start-up tries again.
			m.log.Warn("undo interrupted pod", "pod", sb.ID, "err", err)
			m.store.Drop(sb.ID)
			return
		}
	}
	m.log.Info("undid a pod sandbox whose creation was interrupted", "pod", sb.ID, "name", sb.Config.Metadata.Namespace+"/"+sb.Config.Metadata.Name)
}
