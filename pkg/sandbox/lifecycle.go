package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/cri-runtime/cri-runtime/pkg/cgroup"
	"github.com/cri-runtime/cri-runtime/pkg/crashpoint"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/events"
	"github.com/cri-runtime/cri-runtime/pkg/index"
)

// Stop detaches the pod's network and marks it NotReady. Its containers
// are not this package's: pod.Coordinator stops them first. Stopping a
// stopped or unknown pod succeeds: the CRI makes Stop idempotent.
func (m *Manager) Stop(ctx context.Context, id string) error {
	sb, err := m.Get(id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer m.lock(sb.ID)()
	return m.stopLocked(ctx, sb.ID)
}

func (m *Manager) stopLocked(ctx context.Context, id string) error {
	sb, err := m.store.Get(id)
	if err != nil {
		return nil
	}
	wasReady := sb.State == Ready
	if wasReady {
		// Write-ahead: NotReady and not yet detached, so that a crash
		// before DEL has run leaves a pod whose DEL a start-up still runs.
		sb, err = m.store.Update(id, func(sb *Sandbox) error {
			m.stopPause(sb)
			sb.State = NotReady
			return nil
		})
		if err != nil {
			return err
		}
		crashpoint.Hit("pod-stop:not-ready")
	}
	if err := m.detach(ctx, sb); err != nil {
		return fmt.Errorf("stop pod %s: %w", id, err)
	}
	if wasReady {
		m.opts.Events.Publish(events.Event{Type: events.Stopped, ContainerID: id, PodID: id})
		m.log.Info("pod sandbox stopped", "pod", id)
	}
	return nil
}

// detach runs the CNI DEL a NotReady pod still owes, and records that it
// ran. Nothing is owed by host-network pods or detached ones. DEL ran even
// when its record cannot be written: the pod shows it, and the error says
// it was not saved.
func (m *Manager) detach(ctx context.Context, sb *Sandbox) error {
	if sb.Detached || sb.Config.HostNetwork {
		return nil
	}
	if err := m.opts.Network.Detach(ctx, m.cniPod(sb), sb.Network); err != nil {
		return err
	}
	_, err := m.store.UpdateUnsaved(sb.ID, func(sb *Sandbox) error { sb.Detached = true; return nil })
	return err
}

// Remove stops the pod if needed and deletes everything it had: namespace
// pins, files, /dev/shm, the cgroup we made, its record. Its containers
// must be gone (pod.Coordinator removes them first). Removing an unknown
// pod succeeds.
func (m *Manager) Remove(ctx context.Context, id string) error {
	sb, err := m.Get(id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	id = sb.ID
	defer m.lock(id)()
	if err := m.stopLocked(ctx, id); err != nil {
		return err
	}
	// Write-ahead: from here a crash leaves a pod the start-up removes.
	sb, err = m.store.Update(id, func(sb *Sandbox) error { sb.Removing = true; return nil })
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	crashpoint.Hit("pod-remove:marked")
	if err := m.removeLocked(sb); err != nil {
		return err
	}
	m.opts.Events.Publish(events.Event{Type: events.Deleted, ContainerID: id, PodID: id})
	m.log.Info("pod sandbox removed", "pod", id)
	return nil
}

// removeLocked takes away everything a stopped pod without containers
// still has: /dev/shm, namespace pins, its directory, the cgroup we made,
// its record. Each step tolerates what is gone already.
func (m *Manager) removeLocked(sb *Sandbox) error {
	id := sb.ID
	if err := unmountShm(sb.Dir); err != nil {
		return err
	}
	if err := m.unpinAll(sb); err != nil {
		return err
	}
	crashpoint.Hit("pod-remove:unpinned")
	if err := os.RemoveAll(sb.Dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove pod directory: %w", err)
	}
	if err := m.opts.CgroupDriver.RemovePodLeaves(sb.CgroupParent); err != nil {
		return err
	}
	if sb.CgroupCreated != "" {
		if err := cgroup.Remove(sb.CgroupParent, sb.CgroupCreated); err != nil {
			return err
		}
	}
	if err := m.store.Delete(id); err != nil {
		return err
	}
	m.samples.Forget(sb.CgroupParent)
	m.mu.Lock()
	key := sb.Config.Metadata.key()
	named := m.byKey[key] == id
	if named {
		delete(m.byKey, key)
	}
	m.mu.Unlock()
	// Not under m.mu: handover.Do holds its own lock while it asks (taken)
	// under m.mu whether the name is in use; the other order deadlocked.
	if named {
		m.handover.Forget(key)
	}
	m.locks.Forget(id)
	return nil
}

// Get returns a copy of the pod with this ID or unique ID prefix.
func (m *Manager) Get(id string) (*Sandbox, error) {
	return m.store.Get(id)
}

// Filter selects pods for List; zero fields match everything.
type Filter struct {
	ID     string // full ID or prefix
	State  State
	Labels map[string]string // all must match
}

// List returns copies of the pods matching f, oldest first.
func (m *Manager) List(f Filter) []*Sandbox {
	out := m.store.List(func(sb *Sandbox) bool {
		return (f.ID == "" || strings.HasPrefix(sb.ID, f.ID)) && (f.State == "" || sb.State == f.State) && index.LabelsMatch(sb.Config.Labels, f.Labels)
	})
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out
}

// UpdateResources records the pod-level resources the kubelet has applied
// to the pod's cgroup, so the pod's status reflects them.
func (m *Manager) UpdateResources(id string, overhead, resources *Resources) error {
	sb, err := m.Get(id)
	if err != nil {
		return err
	}
	defer m.lock(sb.ID)()
	_, err = m.store.Update(sb.ID, func(sb *Sandbox) error {
		sb.Config.Overhead, sb.Config.Resources = overhead, resources
		return nil
	})
	return err
}
