package keylock

import (
	"sync"
	"testing"
)

func TestOneKeyIsSerialized(t *testing.T) {
	var (
		l       Locks
		wg      sync.WaitGroup
		inside  int
		maxSeen int
		mu      sync.Mutex
	)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer l.Lock("a")()
			mu.Lock()
			inside++
			maxSeen = max(maxSeen, inside)
			mu.Unlock()
			mu.Lock()
			inside--
			mu.Unlock()
		}()
	}
	wg.Wait()
	if maxSeen != 1 {
		t.Fatalf("%d holders of one key at once", maxSeen)
	}
}

func TestKeysAreIndependent(t *testing.T) {
	var l Locks
	unlockA := l.Lock("a")
	done := make(chan struct{})
	go func() {
		l.Lock("b")() // must not wait for "a"
		close(done)
	}()
	<-done
	unlockA()
	l.Forget("a")
	l.Lock("a")() // a forgotten key starts afresh
}
