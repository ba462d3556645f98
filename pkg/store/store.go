// Package store keeps the daemon's objects (pods, containers) in memory and
// on disk, one JSON record each under <dir>/<id>/<file>, and is the one
// place their state changes.
//
// Every change is persisted before anyone can see it: Update applies the
// change to a copy, checks the state transition against the kind's table,
// saves the copy, and only then publishes it. A crash therefore never loses
// a state somebody observed (an exit, a NotReady). Updates of one record are
// applied one at a time, in the order they take its lock; different records
// proceed in parallel.
//
// Each kind declares its lifecycle once, as a Transitions table; a change
// the table does not allow is refused with errdefs.ErrFailedPrecondition and
// never saved.
package store

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/index"
	"github.com/cri-runtime/cri-runtime/pkg/keylock"
	"github.com/cri-runtime/cri-runtime/pkg/record"
)

// Transitions is a kind's state machine: from each state, the states it may
// move to. The zero state's entry lists the states a new record may have
// (Create, WriteAhead). Staying in a state is always allowed: an update
// that changes other fields.
type Transitions[S comparable] map[S][]S

// Allowed reports whether a record may go from one state to another.
func (t Transitions[S]) Allowed(from, to S) bool {
	return from == to || slices.Contains(t[from], to)
}

// check is Allowed as an error wrapping ErrFailedPrecondition.
func (t Transitions[S]) check(kind, id string, from, to S) error {
	if t.Allowed(from, to) {
		return nil
	}
	var zero S
	if from == zero {
		return fmt.Errorf("%s %s cannot begin %v: %w", kind, id, to, errdefs.ErrFailedPrecondition)
	}
	return fmt.Errorf("%s %s cannot go from %v to %v: %w", kind, id, from, to, errdefs.ErrFailedPrecondition)
}

// Kind describes the records of one kind of object.
type Kind[T any, S comparable] struct {
	// Name names the kind in errors and logs ("container", "pod sandbox").
	Name string
	// File is the record's file name in its directory ("container.json").
	File string
	// ID, State and Clone read a record's ID and lifecycle state, and copy
	// it deeply enough that a change to the copy never shows in the
	// original.
	ID    func(*T) string
	State func(*T) S
	Clone func(*T) *T
	// Transitions is the kind's state machine.
	Transitions Transitions[S]
}

// ErrUnsaved marks the error of UpdateUnsaved when the change was published
// although its record could not be written.
var ErrUnsaved = errors.New("published, but not saved")

// Store holds the records of one kind. Safe for concurrent use. Records
// handed out are copies, which callers may keep and change freely.
type Store[T any, S comparable] struct {
	dir  string
	kind Kind[T, S]

	mu      sync.Mutex
	records map[string]*T // published; never changed in place
	order   keylock.Locks // orders the writers of one record
}

// New returns an empty store of records under dir.
func New[T any, S comparable](dir string, kind Kind[T, S]) *Store[T, S] {
	return &Store[T, S]{dir: dir, kind: kind, records: map[string]*T{}}
}

// Dir is the directory of record id: its file, and whatever else the
// object keeps next to it, which Delete removes with it.
func (s *Store[T, S]) Dir(id string) string { return filepath.Join(s.dir, id) }

// Path is the file of record id.
func (s *Store[T, S]) Path(id string) string { return filepath.Join(s.dir, id, s.kind.File) }

// Load publishes every record found under the store's directory. A record
// that cannot be read, or whose ID is not its directory's name, is logged
// and skipped: never a reason to refuse to start. A missing directory holds
// no records.
func (s *Store[T, S]) Load(log *slog.Logger) error {
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load %s records: %w", s.kind.Name, err)
	}
	loaded := map[string]*T{}
	for _, e := range entries {
		v := new(T)
		err := record.Load(s.Path(e.Name()), v)
		if err == nil && s.kind.ID(v) != e.Name() {
			err = fmt.Errorf("the record is of %q", s.kind.ID(v))
		}
		if err != nil {
			log.Warn("skip unreadable "+s.kind.Name+" record", "id", e.Name(), "err", err)
			continue
		}
		loaded[e.Name()] = v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, v := range loaded {
		s.records[id] = v
	}
	return nil
}

// Get returns a copy of the record whose ID is id, else of the only one
// whose ID starts with id: NotFound when none does, InvalidArgument when
// several do.
func (s *Store[T, S]) Get(id string) (*T, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := index.Find(s.records, id, s.kind.Name)
	if err != nil {
		return nil, err
	}
	return s.kind.Clone(v), nil
}

// Contains reports whether a record has exactly this ID.
func (s *Store[T, S]) Contains(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.records[id]
	return ok
}

// List returns copies of the records keep accepts (all when keep is nil),
// in no particular order. keep sees the published record: it must not
// change or retain it.
func (s *Store[T, S]) List(keep func(*T) bool) []*T {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*T, 0, len(s.records))
	for _, v := range s.records {
		if keep == nil || keep(v) {
			out = append(out, s.kind.Clone(v))
		}
	}
	return out
}

// WriteAhead saves a record that is not published yet: the write-ahead
// record of an object being made, which start-up recovery finds if the
// daemon dies before Create. Its state must be one the table lets a record
// begin in.
func (s *Store[T, S]) WriteAhead(v *T) error { return s.create(v, false) }

// Create saves a new record, then publishes it (a copy: the caller keeps
// v). Its state must be one the table lets a record begin in.
func (s *Store[T, S]) Create(v *T) error { return s.create(v, true) }

// create saves a copy of the new record v, and publishes the copy when
// publish is set.
func (s *Store[T, S]) create(v *T, publish bool) error {
	id := s.kind.ID(v)
	var zero S
	if err := s.kind.Transitions.check(s.kind.Name, id, zero, s.kind.State(v)); err != nil {
		return err
	}
	defer s.order.Lock(id)()
	if s.Contains(id) {
		return fmt.Errorf("%s %s: %w", s.kind.Name, id, errdefs.ErrAlreadyExists)
	}
	next := s.kind.Clone(v)
	if err := record.Save(s.Path(id), next); err != nil {
		return err
	}
	if publish {
		s.mu.Lock()
		s.records[id] = next
		s.mu.Unlock()
	}
	return nil
}

// Update changes record id (a full ID): change is applied to a copy, the
// copy's state transition is checked, the copy is saved, and only then
// does it replace the published record. An error from change, a refused
// transition or a failed save leave the record as it was, in memory and
// on disk. Update returns a copy of the new record. change runs with the
// record's updates held off: it must not call the store about the same
// record.
func (s *Store[T, S]) Update(id string, change func(*T) error) (*T, error) {
	return s.update(id, change, false)
}

// UpdateUnsaved is Update for a change whose side effect already happened
// (a process was started) when its record may not be writable (a full
// disk): a failed save still publishes the change, and the error wraps
// ErrUnsaved. The record on disk stays behind until the next Update of the
// record saves the whole of it; recovery at start-up must be able to work
// the change out meanwhile. Errors from change or the transition table
// publish nothing, as in Update.
func (s *Store[T, S]) UpdateUnsaved(id string, change func(*T) error) (*T, error) {
	return s.update(id, change, true)
}

func (s *Store[T, S]) update(id string, change func(*T) error, publishUnsaved bool) (*T, error) {
	defer s.order.Lock(id)()
	s.mu.Lock()
	cur, ok := s.records[id]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%s %s: %w", s.kind.Name, id, errdefs.ErrNotFound)
	}
	// cur is never changed in place, and only writers holding id's order
	// lock replace it: it can be read here without s.mu.
	next := s.kind.Clone(cur)
	if err := change(next); err != nil {
		return nil, err
	}
	if got := s.kind.ID(next); got != id {
		return nil, fmt.Errorf("%s %s: an update may not change the ID (to %q): %w", s.kind.Name, id, got, errdefs.ErrInvalidArgument)
	}
	if err := s.kind.Transitions.check(s.kind.Name, id, s.kind.State(cur), s.kind.State(next)); err != nil {
		return nil, err
	}
	saveErr := record.Save(s.Path(id), next)
	if saveErr != nil && !publishUnsaved {
		return nil, saveErr
	}
	s.mu.Lock()
	s.records[id] = next
	s.mu.Unlock()
	if saveErr != nil {
		return s.kind.Clone(next), fmt.Errorf("%w: %w", ErrUnsaved, saveErr)
	}
	return s.kind.Clone(next), nil
}

// Delete removes record id's directory, then unpublishes it. An update
// racing with it either lands before (and is deleted) or finds the record
// gone. Deleting an unknown record removes its directory if there is one.
func (s *Store[T, S]) Delete(id string) error {
	unlock := s.order.Lock(id)
	defer unlock()
	if err := os.RemoveAll(s.Dir(id)); err != nil {
		return fmt.Errorf("remove record of %s %s: %w", s.kind.Name, id, err)
	}
	s.mu.Lock()
	delete(s.records, id)
	s.mu.Unlock()
	s.order.Forget(id)
	return nil
}

// Drop unpublishes record id but keeps its file: for a record recovery
// could not settle now, which the next start-up tries again, and for a
// container whose removal finishes in the background (the file goes with
// its directory then). An update racing with it lands before or finds
// the record gone.
func (s *Store[T, S]) Drop(id string) {
	unlock := s.order.Lock(id)
	defer unlock()
	s.mu.Lock()
	delete(s.records, id)
	s.mu.Unlock()
	// Like Delete: a removed container's lock would otherwise stay for the
	// daemon's life, one per container ever removed.
	s.order.Forget(id)
}
