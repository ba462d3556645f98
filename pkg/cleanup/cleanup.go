// Package cleanup is the daemon's one way to roll back work done in steps:
// a stack of undo steps, pushed as each step succeeds, run last first when
// a later step fails, forgotten when the whole succeeds.
//
// A rollback runs when the request's context may be what failed (the
// kubelet gave up, or its deadline passed), so each undo step gets a
// context of its own: it survives the caller's cancellation, keeps the
// caller's values (logger fields, request ID), and is bounded by the
// stack's timeout, so that a wedged CNI plugin or runc cannot hold the
// RPC (and the pod's or name's reservation) forever. What a step could
// not undo is logged with the step's name and returned, never dropped.
//
// A Stack is used by one goroutine; it is not safe for concurrent use.
package cleanup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/safego"
)

// Timeout bounds each undo step. Undo steps are the inverse of one step of
// a create: a CNI DEL, a runc delete, removing a writable layer or a
// directory. On a loaded node (2 cores shared with image pulls) those take
// seconds, and a CNI plugin waiting on its IPAM store or a runc waiting on
// a frozen cgroup can take tens of seconds, so a minute leaves room for a
// slow but working step; a step still running after a minute is wedged, and
// waiting longer only keeps the failed request (and what it reserved)
// from returning. Each step has its own budget, so that a wedged step does
// not leave the ones after it, which release local state (records,
// directories), with an expired context.
const Timeout = time.Minute

type step struct {
	name string
	undo func(context.Context) error
}

// Stack is a stack of undo steps. The zero value is not usable: make one
// with New.
type Stack struct {
	log     *slog.Logger
	what    string
	attrs   []any
	timeout time.Duration
	steps   []step
}

// New returns an empty stack. what names the rollback in logs and errors
// ("roll back a failed RunPodSandbox"); attrs are key/value pairs logged
// with each failure (e.g. "pod", id). log may be nil (slog.Default).
func New(log *slog.Logger, what string, attrs ...any) *Stack {
	if log == nil {
		log = slog.Default()
	}
	return &Stack{log: log, what: what, attrs: attrs, timeout: Timeout}
}

// WithTimeout sets the bound of each step (Timeout by default) and
// returns s: for a rollback whose steps are known to need more, or less.
func (s *Stack) WithTimeout(d time.Duration) *Stack {
	s.timeout = d
	return s
}

// Push adds an undo step, named for logs and errors ("delete the record").
// Push it just before (or just after) the step it undoes: before, when a
// failure of that step may have left part of its work behind, so the undo
// must tolerate nothing to undo.
func (s *Stack) Push(name string, undo func(ctx context.Context) error) {
	s.steps = append(s.steps, step{name: name, undo: undo})
}

// Release forgets every step: the work succeeded and is kept.
func (s *Stack) Release() { s.steps = nil }

// Run runs the steps last first, each with a context that survives ctx's
// cancellation and is bounded by the stack's timeout, and empties the
// stack. A step's failure, or panic, does not stop the others: each is
// logged with the step's name, and all are joined in the error returned.
func (s *Stack) Run(ctx context.Context) error {
	steps := s.steps
	s.steps = nil
	base := context.WithoutCancel(ctx)
	var errs []error
	for i := len(steps) - 1; i >= 0; i-- {
		st := steps[i]
		sctx, cancel := context.WithTimeout(base, s.timeout)
		err := safego.Call(s.log, s.what+": "+st.name, func() error { return st.undo(sctx) })
		cancel()
		if err != nil {
			s.log.Warn(s.what, append(append([]any{}, s.attrs...), "step", st.name, "err", err)...)
			errs = append(errs, fmt.Errorf("%s: %w", st.name, err))
		}
	}
	return errors.Join(errs...)
}

// OnError, deferred with the address of the caller's named error result,
// runs the steps when that error is set and forgets them when it is not:
//
//	st := cleanup.New(log, "roll back a failed CreateContainer", "container", id)
//	defer st.OnError(ctx, &retErr)
//
// What the rollback could not undo is added to *retErr as text: the caller
// learns of it, but its error keeps the code of the failure itself (a
// rollback's NotFound must not turn an AlreadyExists into a NotFound).
func (s *Stack) OnError(ctx context.Context, retErr *error) {
	if *retErr == nil {
		s.Release()
		return
	}
	if err := s.Run(ctx); err != nil {
		*retErr = errors.Join(*retErr, errors.New(s.what+": "+err.Error()))
	}
}
