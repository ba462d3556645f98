package oci

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/safego"
)

// exitWatcher tells waiters when conmon writes an exit file, through one
// inotify watch on the exit directory: no polling, one goroutine for all
// containers.
type exitWatcher struct {
	f    *os.File
	mu   sync.Mutex
	subs map[string]map[chan struct{}]bool
	done chan struct{}
}

func newExitWatcher(dir string) (*exitWatcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("watch %s: %w", dir, err)
	}
	w := &exitWatcher{
		f:    os.NewFile(uintptr(fd), "inotify"), // non-blocking: Close wakes the reader
		subs: map[string]map[chan struct{}]bool{},
		done: make(chan struct{}),
	}
	safego.Go(nil, "watch exit files", w.run)
	return w, nil
}

func (w *exitWatcher) run() {
	defer close(w.done)
	readInotify(w.f, func(name string) bool { w.notify(name); return true })
}

// readInotify reads the events of inotify descriptor f and calls each with
// the name of the file concerned, until f is closed or each returns false.
func readInotify(f *os.File, each func(name string) bool) {
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := f.Read(buf)
		if err != nil {
			return // closed
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if !each(string(bytes.TrimRight(name, "\x00"))) {
				return
			}
		}
	}
}

func (w *exitWatcher) notify(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.subs[name] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// subscribe returns a channel that receives a value whenever the exit file
// of id is written, and a function to stop.
func (w *exitWatcher) subscribe(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	if w.subs[id] == nil {
		w.subs[id] = map[chan struct{}]bool{}
	}
	w.subs[id][ch] = true
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		delete(w.subs[id], ch)
		if len(w.subs[id]) == 0 {
			delete(w.subs, id)
		}
		w.mu.Unlock()
	}
}

func (w *exitWatcher) close() error {
	err := w.f.Close()
	<-w.done
	return err
}
