package pod

import (
	"fmt"
	"sync"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/sandbox"
)

// PodGetter finds a pod by ID or unique ID prefix (sandbox.Manager).
type PodGetter interface {
	Get(id string) (*sandbox.Sandbox, error)
}

// Gate is every pod's admission lock: container creations and starts hold
// a pod's gate shared (Admit), the Coordinator's stop and removal of the
// pod exclusively. So a creation and a removal never interleave: the
// removal waits for the creations under way (and removes what they made),
// and a creation asked for once a stop or removal began waits for it, then
// finds the pod not ready, or gone.
//
// The container service admits itself (container.Options.Pods is the
// Gate), inside the work a CreateContainer goes on with after its client
// gave up; the Coordinator is built with the same Gate. Safe for
// concurrent use.
type Gate struct {
	pods PodGetter

	mu    sync.Mutex
	gates map[string]*sync.RWMutex // by full pod ID
}

// NewGate returns the admission lock of the pods that pods knows.
func NewGate(pods PodGetter) *Gate {
	return &Gate{pods: pods, gates: map[string]*sync.RWMutex{}}
}

// Get returns the pod with this ID or unique ID prefix, so that the Gate
// is all a container service needs of the pods.
func (g *Gate) Get(id string) (*sandbox.Sandbox, error) { return g.pods.Get(id) }

func (g *Gate) of(id string) *sync.RWMutex {
	g.mu.Lock()
	defer g.mu.Unlock()
	l, ok := g.gates[id]
	if !ok {
		l = &sync.RWMutex{}
		g.gates[id] = l
	}
	return l
}

// Admit lets one container be created or started in pod id (an ID or
// unique prefix): the pod is ready now and is neither stopped nor removed
// until release is called. It fails with NotFound for an unknown pod and
// FailedPrecondition for a pod that is not ready.
func (g *Gate) Admit(id string) (release func(), err error) {
	sb, err := g.pods.Get(id)
	if err != nil {
		return nil, err
	}
	l := g.of(sb.ID)
	l.RLock()
	// Again under the gate: a stop or removal may have run meanwhile.
	if sb, err = g.pods.Get(sb.ID); err == nil && sb.State != sandbox.Ready {
		err = fmt.Errorf("pod sandbox %s is not ready: %w", sb.ID, errdefs.ErrFailedPrecondition)
	}
	if err != nil {
		l.RUnlock()
		return nil, err
	}
	return l.RUnlock, nil
}

// exclude waits for the containers admitted into pod id (a full ID) and
// holds off new ones until the returned function is called.
func (g *Gate) exclude(id string) func() {
	l := g.of(id)
	l.Lock()
	return l.Unlock
}

// forget drops the gate of a pod that is gone. Whoever still waits on it
// finds the pod gone once it has it.
func (g *Gate) forget(id string) {
	g.mu.Lock()
	delete(g.gates, id)
	g.mu.Unlock()
}

// size is the number of gates held, for tests.
func (g *Gate) size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.gates)
}
