package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/cgroup"
	"github.com/cri-runtime/cri-runtime/pkg/cleanup"
	"github.com/cri-runtime/cri-runtime/pkg/crashpoint"
	"github.com/cri-runtime/cri-runtime/pkg/index"
)

// RunPodSandbox's work, step by step (Run, in manager.go, admits it).

// create does the work of Run, undoing every step on failure.
func (m *Manager) create(ctx context.Context, cfg Config) (_ *Sandbox, retErr error) {
	id := index.NewID()
	sb := &Sandbox{
		ID:         id,
		Config:     cfg,
		State:      creating,
		CreatedAt:  time.Now(),
		Dir:        filepath.Join(m.opts.State, "sandboxes", id),
		Namespaces: map[string]string{},
	}
	var err error
	if sb.CgroupParent, err = m.opts.CgroupDriver.PodCgroup(cfg.CgroupParent, id); err != nil {
		return nil, err
	}
	phases := newPhases()
	undo := cleanup.New(m.log, "roll back a failed RunPodSandbox", "pod", id)
	defer undo.OnError(ctx, &retErr)
	// Write-ahead: a record in state "creating" before any side effect, so
	// that after a crash the start-up pass knows to undo this pod (CNI DEL
	// included) instead of leaking it.
	undo.Push("delete the record", func(context.Context) error { return m.store.Delete(id) })
	if err := m.store.WriteAhead(sb); err != nil {
		return nil, err
	}
	crashpoint.Hit("pod-run:record")
	undo.Push("remove the pod directory", func(context.Context) error { return os.RemoveAll(sb.Dir) })
	if err := os.MkdirAll(sb.Dir, 0o711); err != nil {
		return nil, err
	}

	// Namespaces, with the hostname and sysctls set inside them.
	var kinds []nsKind
	if !cfg.HostNetwork {
		kinds = append(kinds, netNS, utsNS)
	}
	if !cfg.HostIPC {
		kinds = append(kinds, ipcNS)
	}
	hostname := m.hostname(cfg)
	nsDir := filepath.Join(sb.Dir, "ns")
	undo.Push("unpin the namespaces", func(context.Context) error { return m.unpinAll(sb) })
	inside := func() error {
		if !cfg.HostNetwork {
			if err := loopbackUp(); err != nil {
				return err
			}
			if hostname != "" {
				if err := unix.Sethostname([]byte(hostname)); err != nil {
					return fmt.Errorf("set hostname %q: %w", hostname, err)
				}
			}
		}
		return writeSysctls(cfg.Sysctls)
	}
	if cfg.UserNS != nil {
		// The pod's init, when it has one, is born in the user namespace.
		sharedPID := cfg.PIDMode == PIDPod
		if sharedPID {
			kinds = append(kinds, pidNS)
			undo.Push("stop the pause process", func(context.Context) error { m.stopPause(sb); return nil })
		}
		err = m.createUserNamespaces(sb, nsDir, kinds, sharedPID, inside)
		kinds = append(kinds, userNS)
	} else {
		err = createNamespaces(nsDir, kinds, inside)
	}
	if err != nil {
		return nil, fmt.Errorf("create namespaces of pod %s: %w", id, err)
	}
	for _, k := range kinds {
		sb.Namespaces[k.name] = filepath.Join(nsDir, k.name)
	}
	phases.done("namespaces")

	crashpoint.Hit("pod-run:namespaces")

	// The network is set up while the rest of the pod is made: CNI ADD
	// needs only the network namespace, and it is most of RunPodSandbox
	// (the plugins' processes, their iptables); the cgroup, the init, the
	// files and /dev/shm are made meanwhile. Whatever fails, the ADD is
	// waited for and, when it attached the pod, undone.
	attach := m.attachSoon(ctx, sb)
	if attach != nil {
		pod := m.cniPod(sb)
		undo.Push("detach the network", func(ctx context.Context) error {
			att, err := attach()
			if err != nil {
				return nil // Attach undid its own half-done work
			}
			return m.opts.Network.Detach(ctx, pod, att)
		})
	}

	// The cgroup parent. What will be created is recorded first, so that a
	// crash while creating it still leaves a record of what to remove.
	if m.opts.CgroupDriver.MakesPodCgroups() {
		if top := cgroup.TopMissing(sb.CgroupParent); top != "" {
			sb.CgroupCreated = top
			if err := m.store.WriteAhead(sb); err != nil {
				return nil, err
			}
			undo.Push("remove the pod cgroup", func(context.Context) error { return cgroup.Remove(sb.CgroupParent, top) })
			if _, err := cgroup.Ensure(sb.CgroupParent); err != nil {
				return nil, err
			}
			crashpoint.Hit("pod-run:cgroup")
		}
	}

	phases.done("cgroup")

	// A shared PID namespace needs an init to live. In a user namespace it
	// was started with the namespaces, and is moved into the pod's cgroup
	// here, which it cannot join itself.
	if cfg.PIDMode == PIDPod && cfg.UserNS != nil {
		if err := m.placePause(sb); err != nil {
			return nil, err
		}
	} else if cfg.PIDMode == PIDPod {
		if m.opts.PauseBinary == "" {
			return nil, errNoPauseBinary
		}
		undo.Push("stop the pause process", func(context.Context) error { m.stopPause(sb); return unpin(filepath.Join(nsDir, pidNS.name)) })
		if err := m.startPause(sb); err != nil {
			return nil, err
		}
		if m.opts.CgroupDriver.IsSystemd() {
			if err := m.placePause(sb); err != nil {
				return nil, err
			}
		}
	}

	// Files and /dev/shm.
	if err := os.WriteFile(sb.HostnamePath(), []byte(hostname+"\n"), 0o644); err != nil {
		return nil, err
	}
	resolv, err := resolvConf(cfg.DNS, m.opts.HostResolv)
	if err != nil {
		return nil, fmt.Errorf("resolv.conf: %w", err)
	}
	if err := os.WriteFile(sb.ResolvConfPath(), resolv, 0o644); err != nil {
		return nil, err
	}
	if !cfg.HostIPC {
		size := int64(DefaultShmSize)
		if s, ok := cfg.Annotations[ShmSizeAnnotation]; ok {
			size, _ = strconv.ParseInt(s, 10, 64)
		}
		undo.Push("unmount /dev/shm", func(context.Context) error { return unmountShm(sb.Dir) })
		if err := mountShm(sb.Dir, size); err != nil {
			return nil, err
		}
	}

	phases.done("files")
	crashpoint.Hit("pod-run:files")

	// Networking.
	if attach != nil {
		att, err := attach()
		if err != nil {
			return nil, fmt.Errorf("set up network of pod %s: %w", id, err)
		}
		sb.Network = att
		crashpoint.Hit("pod-run:network")
	}
	hosts := hostsContent(hostname, sb.IPs())
	if cfg.HostNetwork {
		if hosts, err = os.ReadFile("/etc/hosts"); err != nil {
			return nil, fmt.Errorf("read the host's /etc/hosts: %w", err)
		}
	}
	if err := writeFileAtomic(sb.HostsPath(), hosts, 0o644); err != nil {
		return nil, err
	}
	phases.done("network")

	sb.State = Ready
	if err := m.publish(sb); err != nil {
		return nil, err
	}
	phases.done("save")
	m.log.Info("pod sandbox ready", "pod", id, "name", cfg.Metadata.Namespace+"/"+cfg.Metadata.Name, "ips", sb.IPs())
	m.log.Debug("pod sandbox creation", append([]any{"pod", id}, phases.attrs()...)...)
	return sb, nil
}

// publish saves the ready pod's record and makes it visible, under its
// metadata's name.
func (m *Manager) publish(sb *Sandbox) error {
	key := sb.Config.Metadata.key()
	m.mu.Lock()
	m.byKey[key] = sb.ID
	m.mu.Unlock()
	if err := m.store.Create(sb); err != nil {
		m.mu.Lock()
		if m.byKey[key] == sb.ID {
			delete(m.byKey, key)
		}
		m.mu.Unlock()
		return err
	}
	return nil
}

// phases times the steps of an operation for a debug log line.
type phases struct {
	last  time.Time
	times []any
}

func newPhases() *phases { return &phases{last: time.Now()} }

func (p *phases) done(name string) {
	now := time.Now()
	p.times = append(p.times, name, now.Sub(p.last))
	p.last = now
}

func (p *phases) attrs() []any { return p.times }
