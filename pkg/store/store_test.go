package store

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/record"
)

type state string

const (
	begun  state = "begun"
	ready  state = "ready"
	done   state = "done"
	broken state = "broken"
)

type thing struct {
	ID    string   `json:"id"`
	State state    `json:"state"`
	N     int      `json:"n"`
	Log   []string `json:"log,omitempty"`
}

var things = Kind[thing, state]{
	Name:  "thing",
	File:  "thing.json",
	ID:    func(t *thing) string { return t.ID },
	State: func(t *thing) state { return t.State },
	Clone: func(t *thing) *thing { c := *t; c.Log = append([]string(nil), t.Log...); return &c },
	Transitions: Transitions[state]{
		"":    {begun, ready},
		begun: {ready},
		ready: {done},
	},
}

func newStore(t *testing.T) *Store[thing, state] {
	t.Helper()
	return New(t.TempDir(), things)
}

func onDisk(t *testing.T, s *Store[thing, state], id string) *thing {
	t.Helper()
	v := &thing{}
	if err := record.Load(s.Path(id), v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCreateSavesThenPublishesACopy(t *testing.T) {
	s := newStore(t)
	v := &thing{ID: "a1", State: ready}
	if err := s.Create(v); err != nil {
		t.Fatal(err)
	}
	v.N = 99 // the caller's value is not the store's
	got, err := s.Get("a")
	if err != nil || got.N != 0 || got.State != ready {
		t.Fatalf("Get = %+v, %v; want the record as created", got, err)
	}
	if d := onDisk(t, s, "a1"); d.State != ready {
		t.Fatalf("on disk: %+v", d)
	}
	if err := s.Create(&thing{ID: "a1", State: ready}); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("second Create = %v; want AlreadyExists", err)
	}
	if err := s.Create(&thing{ID: "b1", State: done}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("Create in a state no record begins in = %v; want FailedPrecondition", err)
	}
	if s.Contains("b1") {
		t.Fatal("a refused Create published its record")
	}
	if _, err := os.Stat(s.Dir("b1")); !os.IsNotExist(err) {
		t.Fatalf("a refused Create saved its record: %v", err)
	}
}

func TestGetAndList(t *testing.T) {
	s := newStore(t)
	for _, id := range []string{"abc1", "abc2", "def"} {
		if err := s.Create(&thing{ID: id, State: ready}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Get("abc"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("ambiguous prefix = %v; want InvalidArgument", err)
	}
	if _, err := s.Get("x"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("unknown = %v; want NotFound", err)
	}
	if got := s.List(func(v *thing) bool { return strings.HasPrefix(v.ID, "abc") }); len(got) != 2 {
		t.Fatalf("List(abc*) = %d records; want 2", len(got))
	}
	all := s.List(nil)
	if len(all) != 3 {
		t.Fatalf("List = %d records; want 3", len(all))
	}
	all[0].N = 7 // a copy
	if again, _ := s.Get(all[0].ID); again.N != 0 {
		t.Fatal("List handed out a published record")
	}
}

// A save that fails publishes nothing: nobody sees a state a crash would
// lose. UpdateUnsaved publishes it and says so.
func TestUpdateSavesBeforePublishing(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes into read-only directories")
	}
	s := newStore(t)
	if err := s.Create(&thing{ID: "a", State: ready}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(s.Dir("a"), 0o500); err != nil { // no temporary file can be made
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(s.Dir("a"), 0o700) })
	if _, err := s.Update("a", func(v *thing) error { v.State = done; return nil }); err == nil {
		t.Fatal("Update succeeded without saving")
	}
	if got, _ := s.Get("a"); got.State != ready {
		t.Fatalf("a failed save published %s", got.State)
	}
	got, err := s.UpdateUnsaved("a", func(v *thing) error { v.State = done; return nil })
	if !errors.Is(err, ErrUnsaved) || got == nil || got.State != done {
		t.Fatalf("UpdateUnsaved = %+v, %v; want the change, and ErrUnsaved", got, err)
	}
	if live, _ := s.Get("a"); live.State != done {
		t.Fatalf("UpdateUnsaved did not publish: %s", live.State)
	}
	if d := onDisk(t, s, "a"); d.State != ready {
		t.Fatalf("on disk: %s; want the old record", d.State)
	}
	// Once the disk takes it again, the next update saves the whole record.
	os.Chmod(s.Dir("a"), 0o700)
	if _, err := s.Update("a", func(v *thing) error { v.N++; return nil }); err != nil {
		t.Fatal(err)
	}
	if d := onDisk(t, s, "a"); d.State != done || d.N != 1 {
		t.Fatalf("on disk: %+v; want done, n=1", d)
	}
}

// The same, for root (who writes into read-only directories): a record
// path whose directory is a file cannot be saved.
func TestUpdateSavesBeforePublishingAsRoot(t *testing.T) {
	s := newStore(t)
	if err := s.Create(&thing{ID: "a", State: ready}); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(s.Dir("a")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.Dir("a"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update("a", func(v *thing) error { v.State = done; return nil }); err == nil {
		t.Fatal("Update succeeded without saving")
	}
	if got, _ := s.Get("a"); got.State != ready {
		t.Fatalf("a failed save published %s", got.State)
	}
	if _, err := s.UpdateUnsaved("a", func(v *thing) error { v.State = done; return nil }); !errors.Is(err, ErrUnsaved) {
		t.Fatalf("UpdateUnsaved = %v; want ErrUnsaved", err)
	}
	if got, _ := s.Get("a"); got.State != done {
		t.Fatalf("UpdateUnsaved did not publish: %s", got.State)
	}
}

func TestUpdateErrorsChangeNothing(t *testing.T) {
	s := newStore(t)
	if err := s.Create(&thing{ID: "a", State: ready, Log: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	for _, tc := range []struct {
		name   string
		change func(*thing) error
		want   error
	}{
		{"the change fails", func(v *thing) error { v.N, v.Log[0] = 5, "y"; return boom }, boom},
		{"refused transition", func(v *thing) error { v.State, v.N = begun, 5; return nil }, errdefs.ErrFailedPrecondition},
		{"ID changed", func(v *thing) error { v.ID = "b"; return nil }, errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Update("a", tc.change); !errors.Is(err, tc.want) {
				t.Fatalf("Update = %v; want %v", err, tc.want)
			}
			if _, err := s.UpdateUnsaved("a", tc.change); !errors.Is(err, tc.want) || errors.Is(err, ErrUnsaved) {
				t.Fatalf("UpdateUnsaved = %v; want %v only", err, tc.want)
			}
			got, _ := s.Get("a")
			if got.N != 0 || got.State != ready || got.Log[0] != "x" {
				t.Fatalf("live record changed: %+v", got)
			}
			if d := onDisk(t, s, "a"); d.N != 0 || d.State != ready {
				t.Fatalf("record on disk changed: %+v", d)
			}
		})
	}
	if _, err := s.Update("zzz", func(*thing) error { return nil }); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Update of an unknown record = %v; want NotFound", err)
	}
}

// Every transition the table allows is accepted, staying put always is, and
// a sample of others is refused and never saved.
func TestTransitions(t *testing.T) {
	allowed := 0
	for from, tos := range things.Transitions {
		for _, to := range tos {
			allowed++
			if !things.Transitions.Allowed(from, to) {
				t.Errorf("%q → %q refused; the table allows it", from, to)
			}
			if from == "" {
				continue // Create's, below
			}
			s := newStore(t)
			if err := s.Create(&thing{ID: "a", State: ready}); err != nil {
				t.Fatal(err)
			}
			s.records["a"].State = from // as if it had got there
			if _, err := s.Update("a", func(v *thing) error { v.State = to; return nil }); err != nil {
				t.Errorf("Update %s → %s: %v", from, to, err)
			}
		}
	}
	if allowed != 4 {
		t.Fatalf("walked %d allowed transitions; the table has 4", allowed)
	}
	for _, st := range []state{"", begun, ready, done, broken} {
		if !things.Transitions.Allowed(st, st) {
			t.Errorf("staying %q refused", st)
		}
	}
	for _, tc := range [][2]state{{ready, begun}, {done, ready}, {done, begun}, {begun, done}, {ready, broken}, {"", done}, {"", broken}} {
		if things.Transitions.Allowed(tc[0], tc[1]) {
			t.Errorf("%q → %q allowed; the table does not list it", tc[0], tc[1])
		}
		if tc[0] == "" {
			continue
		}
		s := newStore(t)
		if err := s.Create(&thing{ID: "a", State: ready}); err != nil {
			t.Fatal(err)
		}
		s.records["a"].State = tc[0]
		_, err := s.Update("a", func(v *thing) error { v.State = tc[1]; return nil })
		if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), fmt.Sprintf("from %s to %s", tc[0], tc[1])) {
			t.Errorf("Update %s → %s = %v; want FailedPrecondition naming both", tc[0], tc[1], err)
		}
		if d := onDisk(t, s, "a"); d.State != ready {
			t.Errorf("refused %s → %s saved %s", tc[0], tc[1], d.State)
		}
	}
}

// Updates of one record are applied one at a time: none is lost, and the
// record on disk is the last one published.
func TestUpdatesOfOneRecordAreOrdered(t *testing.T) {
	s := newStore(t)
	for _, id := range []string{"a", "b"} {
		if err := s.Create(&thing{ID: id, State: ready}); err != nil {
			t.Fatal(err)
		}
	}
	const n = 40
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		for _, id := range []string{"a", "b"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.Update(id, func(v *thing) error {
					v.N++
					v.Log = append(v.Log, fmt.Sprint(v.N))
					return nil
				}); err != nil {
					t.Error(err)
				}
			}()
			wg.Add(1)
			go func() {
				defer wg.Done()
				if v, err := s.Get(id); err == nil && len(v.Log) != v.N {
					t.Errorf("a reader saw a half-applied update: %+v", v)
				}
			}()
		}
	}
	wg.Wait()
	for _, id := range []string{"a", "b"} {
		got, _ := s.Get(id)
		if got.N != n || len(got.Log) != n || got.Log[n-1] != fmt.Sprint(n) {
			t.Fatalf("%s after %d updates: n=%d, %d log entries; an update was lost", id, n, got.N, len(got.Log))
		}
		if d := onDisk(t, s, id); d.N != n {
			t.Fatalf("%s on disk: n=%d; want %d", id, d.N, n)
		}
	}
}

// Delete takes the record's directory with it; an update after it finds
// nothing, and one racing with it never brings the record back.
func TestDelete(t *testing.T) {
	s := newStore(t)
	if err := s.Create(&thing{ID: "a", State: ready}); err != nil {
		t.Fatal(err)
	}
	extra := filepath.Join(s.Dir("a"), "output.log")
	if err := os.WriteFile(extra, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Update("a", func(v *thing) error { v.N++; return nil })
			if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				t.Error(err)
			}
		}()
	}
	if err := s.Delete("a"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if _, err := s.Get("a"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Get after Delete = %v", err)
	}
	if _, err := os.Stat(s.Dir("a")); !os.IsNotExist(err) {
		t.Fatalf("record directory left: %v", err)
	}
	if err := s.Delete("a"); err != nil {
		t.Fatalf("second Delete = %v", err)
	}
}

func TestWriteAheadSavesWithoutPublishing(t *testing.T) {
	s := newStore(t)
	if err := s.WriteAhead(&thing{ID: "a", State: begun}); err != nil {
		t.Fatal(err)
	}
	if s.Contains("a") {
		t.Fatal("a write-ahead record was published")
	}
	if d := onDisk(t, s, "a"); d.State != begun {
		t.Fatalf("on disk: %+v", d)
	}
	if err := s.WriteAhead(&thing{ID: "b", State: done}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("write-ahead in a state no record begins in = %v", err)
	}
	if err := s.Create(&thing{ID: "a", State: ready}); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteAhead(&thing{ID: "a", State: begun}); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("write-ahead over a published record = %v; want AlreadyExists", err)
	}
}

// Load publishes what it can read and skips the rest: a corrupt file, a
// record filed under another ID, a directory without a record.
func TestLoadSkipsCorruptRecords(t *testing.T) {
	dir := t.TempDir()
	s := New(dir, things)
	if err := s.Create(&thing{ID: "good", State: ready, N: 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteAhead(&thing{ID: "half", State: begun}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "corrupt"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "corrupt", "thing.json"), []byte(`{"id": "corr`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := record.Save(filepath.Join(dir, "misfiled", "thing.json"), &thing{ID: "other", State: ready}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "empty"), 0o700); err != nil {
		t.Fatal(err)
	}

	var logs strings.Builder
	s2 := New(dir, things)
	if err := s2.Load(slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	got := s2.List(nil)
	if len(got) != 2 || !s2.Contains("good") || !s2.Contains("half") {
		t.Fatalf("loaded %+v; want good and half", got)
	}
	if v, _ := s2.Get("good"); v.N != 3 {
		t.Fatalf("good = %+v", v)
	}
	for _, skipped := range []string{"corrupt", "misfiled", "empty"} {
		if !strings.Contains(logs.String(), "id="+skipped) {
			t.Errorf("skipping %s was not logged:\n%s", skipped, logs.String())
		}
	}
	if err := New(filepath.Join(dir, "none"), things).Load(slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatalf("Load of a missing directory = %v", err)
	}
}

func TestDropKeepsTheFile(t *testing.T) {
	s := newStore(t)
	if err := s.Create(&thing{ID: "a", State: ready}); err != nil {
		t.Fatal(err)
	}
	s.Drop("a")
	if s.Contains("a") {
		t.Fatal("dropped record still published")
	}
	if d := onDisk(t, s, "a"); d.ID != "a" {
		t.Fatalf("on disk: %+v", d)
	}
}

// BenchmarkUpdate: one update is a clone, a transition check and an
// atomic save (write, fsync, rename); updates of different records run in
// parallel.
func BenchmarkUpdate(b *testing.B) {
	s := New(b.TempDir(), things)
	for i := 0; i < 64; i++ {
		if err := s.Create(&thing{ID: fmt.Sprint(i), State: ready}); err != nil {
			b.Fatal(err)
		}
	}
	var next sync.Mutex
	n := 0
	b.RunParallel(func(pb *testing.PB) {
		next.Lock()
		id := fmt.Sprint(n % 64)
		n++
		next.Unlock()
		for pb.Next() {
			if _, err := s.Update(id, func(v *thing) error { v.N++; return nil }); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkGet: a lookup by ID prefix and a copy.
func BenchmarkGet(b *testing.B) {
	s := New(b.TempDir(), things)
	for i := 0; i < 200; i++ {
		if err := s.Create(&thing{ID: fmt.Sprintf("%04d", i), State: ready}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Get("0123"); err != nil {
			b.Fatal(err)
		}
	}
}
