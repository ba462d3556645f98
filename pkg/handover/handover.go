// Package handover runs the creation of an object (a pod, a container)
// detached from the client that asked for it, so that the kubelet's retry
// after a deadline receives the object instead of "name in use". Work is
// keyed by the object's metadata: a call with the key of work in flight
// waits for it, and the result of work whose callers all gave up is handed
// to the next call with that key. A result goes to one caller only.
package handover

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/safego"
)

// Group holds the work in flight and the results nobody has received yet.
// The zero value is ready to use.
type Group struct {
	mu   sync.Mutex
	jobs map[string]*job
}

type job struct {
	done    chan struct{}
	id      string
	err     error
	claimed bool
}

// Do returns the ID of the object made for key. With no work in flight or
// unclaimed for key, taken (may be nil) is asked whether key is in use,
// and its error returned if so; otherwise work starts, with ctx's values
// but not its cancellation, bounded by timeout. When ctx ends first, Do
// returns ctx.Err() and the work goes on for a retry. When another caller
// has received the result, Do returns what taken says then.
func (g *Group) Do(ctx context.Context, key string, timeout time.Duration, taken func() error, work func(context.Context) (string, error)) (string, error) {
	g.mu.Lock()
	j, ok := g.jobs[key]
	if !ok {
		if taken != nil {
			if err := taken(); err != nil {
				g.mu.Unlock()
				return "", err
			}
		}
		j = &job{done: make(chan struct{})}
		if g.jobs == nil {
			g.jobs = map[string]*job{}
		}
		g.jobs[key] = j
		go g.run(ctx, key, j, timeout, work)
	}
	g.mu.Unlock()

	select {
	case <-j.done:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if j.err != nil {
		return "", j.err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if j.claimed {
		if taken != nil {
			if err := taken(); err != nil {
				return "", err
			}
		}
		return "", errClaimed
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	j.claimed = true
	if g.jobs[key] == j {
		delete(g.jobs, key)
	}
	return j.id, nil
}

func (g *Group) run(ctx context.Context, key string, j *job, timeout time.Duration, work func(context.Context) (string, error)) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	var id string
	err := safego.Call(nil, "hand-over work "+key, func() (err error) {
		id, err = work(wctx)
		return err
	})
	g.mu.Lock()
	j.id, j.err = id, err
	if err != nil && g.jobs[key] == j {
		delete(g.jobs, key) // nothing to hand over; a retry starts afresh
	}
	g.mu.Unlock()
	close(j.done)
}

// Forget drops an unclaimed result for key: its object is being removed.
// Work in flight is left alone. Do calls taken with the group's lock held,
// so callers must not hold a lock that taken takes when they call Forget.
func (g *Group) Forget(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if j, ok := g.jobs[key]; ok {
		select {
		case <-j.done:
			delete(g.jobs, key)
		default:
		}
	}
}

// errClaimed answers a caller whose result went to another caller, when
// taken no longer names the object (it was removed meanwhile).
var errClaimed = fmt.Errorf("another caller received the object: %w", errdefs.ErrAlreadyExists)
