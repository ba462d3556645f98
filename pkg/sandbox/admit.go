package sandbox

import (
	"fmt"
	"sync"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// gate is pod id's admission lock: container creations hold it shared,
// StopPodSandbox and RemovePodSandbox exclusively. So a creation and a
// removal never interleave: the removal waits for the creations under way
// (and removes what they made), and a creation asked for once a stop or
// removal began waits for it, then finds the pod not ready, or gone.
func (m *Manager) gate(id string) *sync.RWMutex {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gates == nil {
		m.gates = map[string]*sync.RWMutex{}
	}
	g, ok := m.gates[id]
	if !ok {
		g = &sync.RWMutex{}
		m.gates[id] = g
	}
	return g
}

// Admit lets one container be created in pod id (an ID or unique prefix):
// the pod is ready now and is neither stopped nor removed until release is
// called. It fails with NotFound for an unknown pod and FailedPrecondition
// for a pod that is not ready.
func (m *Manager) Admit(id string) (release func(), err error) {
	sb, err := m.Get(id)
	if err != nil {
		return nil, err
	}
	g := m.gate(sb.ID)
	g.RLock()
	if sb, err = m.Get(sb.ID); err == nil && sb.State != Ready {
		err = fmt.Errorf("pod sandbox %s is not ready: %w", sb.ID, errdefs.ErrFailedPrecondition)
	}
	if err != nil {
		g.RUnlock()
		return nil, err
	}
	return g.RUnlock, nil
}

// exclude waits for the container creations admitted into pod id and
// holds off new ones until the returned function is called.
func (m *Manager) exclude(id string) func() {
	g := m.gate(id)
	g.Lock()
	return g.Unlock
}
