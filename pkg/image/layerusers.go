package image

import (
	"sync"
	"sync/atomic"
)

// layerUsers orders the store's layer users — pulls, whose layers belong
// to no image until they finish, and creations of writable layers — against
// the removal of the layers nobody uses. Users run together. A removal is
// never waited for: asked for while users run, it is left pending and the
// last user to leave runs it. So a new user never queues behind a removal
// waiting for an unrelated slow pull to end, as it would behind
// sync.RWMutex's waiting writer; it only waits while a removal actually
// runs, which is local work.
type layerUsers struct {
	mu      sync.RWMutex // held shared by users, exclusively by a running removal
	pending atomic.Bool  // a removal was asked for and has not run since
}

// enter starts a use of the store's layers; leave ends it.
func (g *layerUsers) enter() { g.mu.RLock() }

// leave ends a use and runs a pending removal if no use remains.
func (g *layerUsers) leave(remove func()) {
	g.mu.RUnlock()
	g.runPending(remove)
}

// removeSoon asks for remove to run with no user: now if there is none,
// else when the last one leaves. It does not wait.
func (g *layerUsers) removeSoon(remove func()) {
	g.pending.Store(true)
	g.runPending(remove)
}

// runPending runs remove if one is pending and no user (nor another
// removal) holds the lock. The flag is set before the lock is tried, and
// tried again after every leave, so a request is never forgotten.
func (g *layerUsers) runPending(remove func()) {
	for g.pending.Load() && g.mu.TryLock() {
		if g.pending.Swap(false) {
			remove()
		}
		g.mu.Unlock()
	}
}
