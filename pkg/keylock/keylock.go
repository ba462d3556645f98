// Package keylock hands out one mutex per key (an object's ID), so that
// operations on one object are serialized while different objects proceed
// in parallel.
package keylock

import "sync"

// Locks is a set of per-key mutexes, created on first use. The zero value
// is ready to use; it is safe for concurrent use.
type Locks struct {
	mu sync.Mutex
	m  map[string]*sync.Mutex
}

// Lock locks key's mutex and returns its unlock function.
func (l *Locks) Lock(key string) (unlock func()) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*sync.Mutex{}
	}
	k, ok := l.m[key]
	if !ok {
		k = &sync.Mutex{}
		l.m[key] = k
	}
	l.mu.Unlock()
	k.Lock()
	return k.Unlock
}

// Forget drops key's mutex once its object is gone. An operation already
// waiting for it still gets it, and then finds the object gone.
func (l *Locks) Forget(key string) {
	l.mu.Lock()
	delete(l.m, key)
	l.mu.Unlock()
}
