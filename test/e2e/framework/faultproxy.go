package framework

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// FaultProxy relays TCP connections to a target (a test registry) and can be told to misbehave
// as a bad network does: to relay slowly, to stall (connections stay open, nothing moves), or
// to drop (every connection is reset, and new ones as soon as they are accepted). Unlike the
// registry's own faults (BreakBlob, HoldBlobs), these hit any request at any byte: the ping,
// the manifest, the middle of a blob.
type FaultProxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	mode    proxyMode
	rate    int // bytes a second towards the client; 0: no limit
	changed chan struct{}
	conns   map[net.Conn]struct{}
	relayed int64 // bytes relayed towards clients
	closed  bool
	wg      sync.WaitGroup
}

type proxyMode int

const (
	proxyPass proxyMode = iota
	proxyStall
	proxyDrop
)

// StartFaultProxy listens on a free port of 127.0.0.1 and relays to target ("host:port").
// The caller must Close it.
func StartFaultProxy(target string) (*FaultProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fault proxy: listen: %w", err)
	}
	p := &FaultProxy{ln: ln, target: target, changed: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the "127.0.0.1:PORT" the proxy listens on.
func (p *FaultProxy) Addr() string { return p.ln.Addr().String() }

// Slow limits what is relayed towards clients to bytesPerSec (0: no limit), and ends a stall.
func (p *FaultProxy) Slow(bytesPerSec int) { p.set(proxyPass, bytesPerSec) }

// Stall stops relaying in both directions; connections stay open and new ones are accepted,
// but nothing moves until Heal or Slow.
func (p *FaultProxy) Stall() { p.set(proxyStall, p.currentRate()) }

// Drop resets every connection, and every new one at once, until Heal.
func (p *FaultProxy) Drop() {
	p.set(proxyDrop, 0)
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		reset(c)
	}
}

// Heal makes the proxy relay at full speed again.
func (p *FaultProxy) Heal() { p.set(proxyPass, 0) }

// Relayed is how many bytes went towards clients so far.
func (p *FaultProxy) Relayed() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.relayed
}

// Close stops listening and closes every connection.
func (p *FaultProxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.changed)
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

func (p *FaultProxy) currentRate() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rate
}

func (p *FaultProxy) set(mode proxyMode, rate int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.mode, p.rate = mode, rate
	close(p.changed)
	p.changed = make(chan struct{})
}

// reset closes c with an RST, as a dropped link or a killed peer looks.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

func (p *FaultProxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed || p.mode == proxyDrop {
			p.mu.Unlock()
			reset(in)
			continue
		}
		p.mu.Unlock()
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			reset(in)
			continue
		}
		p.mu.Lock()
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		done := make(chan struct{}, 2)
		relay := func(dst, src net.Conn, toClient bool) {
			defer p.wg.Done()
			p.relay(dst, src, toClient)
			done <- struct{}{}
		}
		go relay(out, in, false)
		go relay(in, out, true)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			<-done
			<-done
			p.mu.Lock()
			delete(p.conns, in)
			delete(p.conns, out)
			p.mu.Unlock()
			in.Close()
			out.Close()
		}()
	}
}

// relay copies src to dst through the proxy's gate. When either side ends,
// it ends the other's writing half, as a plain relay would.
func (p *FaultProxy) relay(dst, src net.Conn, toClient bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for off := 0; off < n; {
			chunk, ok := p.gate(n-off, toClient)
			if !ok {
				reset(dst)
				reset(src)
				return
			}
			if _, werr := dst.Write(buf[off : off+chunk]); werr != nil {
				src.Close()
				return
			}
			off += chunk
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
					return
				}
			}
			dst.Close()
			return
		}
	}
}

// gate waits while the proxy stalls and paces a slow one; it says how many
// of n bytes may go now, or false when the connection is to be dropped.
func (p *FaultProxy) gate(n int, toClient bool) (int, bool) {
	for {
		p.mu.Lock()
		mode, rate, changed, closed := p.mode, p.rate, p.changed, p.closed
		p.mu.Unlock()
		switch {
		case closed || mode == proxyDrop:
			return 0, false
		case mode == proxyStall:
			<-changed
			continue
		}
		if toClient && rate > 0 {
			// Slices of a tenth of a second's worth.
			n = max(1, min(n, rate/10))
			select {
			case <-time.After(time.Duration(n) * time.Second / time.Duration(rate)):
			case <-changed:
				continue // the mode changed while waiting: look again
			}
		}
		if toClient {
			p.mu.Lock()
			p.relayed += int64(n)
			p.mu.Unlock()
		}
		return n, true
	}
}
