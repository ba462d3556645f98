package streaming

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// dialer connects every pod port to one TCP listener.
type dialer struct{ addr string }

func (d dialer) DialPort(ctx context.Context, _ string, _ int32) (net.Conn, error) {
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", d.addr)
}

// clientStream is the client's end of a forwarded connection: what the
// client sends, and what it receives.
type clientStream struct {
	in  io.Reader
	mu  sync.Mutex
	out bytes.Buffer
}

func (s *clientStream) Read(p []byte) (int, error) { return s.in.Read(p) }
func (s *clientStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.Write(p)
}
func (s *clientStream) Close() error { return nil }

// A client that finishes sending half-closes the connection: the server in
// the pod reads to the end of the request and still answers.
func TestPortForwardHalfClosesForTheClient(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, _ := io.ReadAll(c) // to the client's end
		c.Write(append([]byte("got:"), req...))
	}()
	a := &adapter{pods: dialer{l.Addr().String()}, log: slog.New(slog.DiscardHandler)}
	s := &clientStream{in: bytes.NewReader([]byte("request"))}
	done := make(chan error, 1)
	go func() { done <- a.PortForward(context.Background(), "pod", 80, s) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("PortForward did not end when the pod's side closed")
	}
	if got := s.out.String(); got != "got:request" {
		t.Fatalf("client received %q; want got:request", got)
	}
}

// Resizes never block the library's sender, and the newest size is the
// one the runtime finds.
func TestResizesNeverBlock(t *testing.T) {
	resize := make(chan remotecommand.TerminalSize)
	s := streams(nil, nil, nil, true, resize)
	for i := range 10 {
		select {
		case resize <- remotecommand.TerminalSize{Width: uint16(80 + i), Height: 24}:
		case <-time.After(5 * time.Second):
			t.Fatalf("resize %d blocked with nobody reading", i)
		}
	}
	close(resize)
	var last uint16
	for size := range s.Resize {
		last = size.Width
	}
	if last != 89 {
		t.Fatalf("last size width %d; want 89", last)
	}
}
