// Package events carries pod and container lifecycle events from the
// services that cause them to the CRI's GetContainerEvents streams (the
// kubelet's evented PLEG).
package events

import (
	"sync"
	"time"
)

// Type is what happened.
type Type int

const (
	Created Type = iota
	Started
	Stopped
	Deleted
)

// Event is one lifecycle change. For a pod sandbox, ContainerID is the
// pod's ID, as the kubelet expects.
type Event struct {
	Type        Type
	ContainerID string
	PodID       string
	At          time.Time
}

// subscriberBuffer is how far a subscriber may fall behind before it is cut
// off: better an ended stream, which the kubelet resubscribes to and then
// relists, than silently missing events.
const subscriberBuffer = 1024

// Broker fans events out to subscribers. The zero value is ready; it is
// safe for concurrent use.
type Broker struct {
	mu   sync.Mutex
	subs map[chan Event]struct{}
}

// Publish delivers e to every subscriber without blocking.
func (b *Broker) Publish(e Event) {
	if b == nil {
		return
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- e:
		default: // fell behind: end its stream
			delete(b.subs, ch)
			close(ch)
		}
	}
}

// Subscribe returns a channel of events from now on, closed when the
// subscriber falls behind, and a function to unsubscribe.
func (b *Broker) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, subscriberBuffer)
	b.mu.Lock()
	if b.subs == nil {
		b.subs = map[chan Event]struct{}{}
	}
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		if _, ok := b.subs[ch]; ok {
			delete(b.subs, ch)
			close(ch)
		}
		b.mu.Unlock()
	}
}
