package oci

import (
	"bytes"
	"testing"
)

// Buffers sharing a budget keep, all together, no more than it holds, and
// give it back when released; each still keeps its first bytes in order.
func TestCappedBuffersShareABudget(t *testing.T) {
	b := &budget{free: 3 * outputChunk}
	one := &cappedBuffer{max: 10 * outputChunk, budget: b}
	two := &cappedBuffer{max: 10 * outputChunk, budget: b}
	data := bytes.Repeat([]byte("0123456789"), outputChunk/5) // two chunks' worth
	for _, w := range []*cappedBuffer{one, two, one} {
		if n, err := w.Write(data); n != len(data) || err != nil {
			t.Fatalf("Write = %d, %v; want it to take everything", n, err)
		}
	}
	if got := len(one.Bytes()) + len(two.Bytes()); got != 3*outputChunk {
		t.Fatalf("the buffers kept %d bytes together; want the budget, %d", got, 3*outputChunk)
	}
	if !bytes.HasPrefix(data, one.Bytes()[:len(data)]) || !bytes.HasPrefix(data, two.Bytes()) {
		t.Fatal("the kept bytes are not the first ones written")
	}
	one.release()
	two.release()
	if b.free != 3*outputChunk {
		t.Fatalf("budget after release = %d; want %d", b.free, 3*outputChunk)
	}
	small := &cappedBuffer{max: 5, budget: b}
	_, _ = small.Write([]byte("hello, world"))
	if small.String() != "hello" {
		t.Fatalf("capped buffer kept %q", small.String())
	}
}
