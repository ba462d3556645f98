package streaming

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/safego"
)

// ServeHTTP serves one stream request. The library hands a session's
// request context to the runtime but, once the connection is hijacked for
// SPDY or WebSocket, nothing cancels it when the client goes away; so the
// hijacked connection is watched here, and its end (a failed read, or the
// library closing it) cancels the context: an abandoned exec is killed
// instead of running on.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	s.lib.ServeHTTP(&hijackWatcher{ResponseWriter: w, gone: cancel}, r.WithContext(ctx))
}

// hijackWatcher hands out a watched connection when the library hijacks.
// It has no Unwrap on purpose: the library would hijack the original.
type hijackWatcher struct {
	http.ResponseWriter
	gone context.CancelFunc
}

func (h *hijackWatcher) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	wc := &watchedConn{Conn: conn, gone: h.gone, closed: make(chan struct{})}
	safego.Go(nil, "watch stream connection for hang-up", wc.watchHangup)
	// What the server had already buffered is read first, then the
	// watched connection.
	var buffered []byte
	if n := rw.Reader.Buffered(); n > 0 {
		b, _ := rw.Reader.Peek(n)
		buffered = bytes.Clone(b)
	}
	r := bufio.NewReader(io.MultiReader(bytes.NewReader(buffered), wc))
	return wc, bufio.NewReadWriter(r, rw.Writer), nil
}

func (h *hijackWatcher) Flush() {
	if f, ok := h.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// watchedConn reports the connection's end.
type watchedConn struct {
	net.Conn
	gone      context.CancelFunc
	closed    chan struct{}
	closeOnce sync.Once
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.gone()
	}
	return n, err
}

func (c *watchedConn) Close() error {
	c.gone()
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// hangupPoll is how long one wait for a hang-up lasts before the watcher
// looks whether the connection was closed on our side.
const hangupPoll = time.Second

// watchHangup reports the client's end even while nobody reads the
// connection: a session whose command does not read its stdin stops
// reading the connection once the stream's buffers are full (the stdin
// copy blocks on the pipe), so a failed Read would never come. The peer
// closing or resetting its end shows as POLLRDHUP (or HUP/ERR) on the
// socket, without reading the data still queued. (kubectl and crictl never
// half-close a streaming connection, so a hang-up means the client is gone.)
func (c *watchedConn) watchHangup() {
	var conn net.Conn = c.Conn
	if tc, ok := conn.(interface{ NetConn() net.Conn }); ok { // TLS
		conn = tc.NetConn()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	for {
		select {
		case <-c.closed:
			return
		default:
		}
		hup := false
		err := raw.Control(func(fd uintptr) {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
			n, err := unix.Poll(fds, int(hangupPoll/time.Millisecond))
			hup = err == nil && n > 0 && fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0
		})
		if err != nil { // closed
			return
		}
		if hup {
			c.gone()
			return
		}
	}
}
