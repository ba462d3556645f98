package streaming

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
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
	wc := &watchedConn{Conn: conn, gone: h.gone}
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
	gone context.CancelFunc
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
	return c.Conn.Close()
}
