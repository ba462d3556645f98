// Package streaming serves the interactive CRI calls — Exec, Attach and
// PortForward — over HTTP. The gRPC calls only hand out a one-time URL
// (GetExec, GetAttach, GetPortForward); the client (the kubelet, crictl)
// then speaks SPDY or WebSocket to that URL, and the streams are joined to
// a process in a container, to a container's monitor, or to a port inside
// a pod. The protocols are k8s.io/cri-streaming's; this package connects
// them to our containers and pods.
package streaming

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"k8s.io/cri-api/pkg/apis/runtime/v1"
	criserver "k8s.io/cri-streaming/pkg/streaming"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/cri-runtime/cri-runtime/pkg/oci"
	"github.com/cri-runtime/cri-runtime/pkg/safego"
)

// Containers runs processes in containers and attaches to them
// (container.Service).
type Containers interface {
	Exec(ctx context.Context, id string, cmd []string, s oci.Streams) (int, error)
	Attach(ctx context.Context, id string, s oci.Streams) error
}

// Pods connects to ports inside pods (sandbox.Manager).
type Pods interface {
	DialPort(ctx context.Context, id string, port int32) (net.Conn, error)
}

// Options configure the Server.
type Options struct {
	// Address is host:port to listen on; port 0 picks a free one.
	Address string
	// TLSCert and TLSKey, when set, serve HTTPS with this key pair;
	// TLSClientCA, when also set, requires client certificates it signed.
	TLSCert, TLSKey, TLSClientCA string
	// IdleTimeout closes a stream connection idle for this long.
	IdleTimeout time.Duration

	Containers Containers
	Pods       Pods
}

// Server is the streaming server. Its URLs are valid once, for a minute.
type Server struct {
	lib  criserver.Server
	http *http.Server
	lis  net.Listener
	tls  bool
	log  *slog.Logger
}

// New listens on opts.Address, so that a bad address or key pair fails
// the daemon's start, and URLs name the port actually bound.
func New(opts Options, log *slog.Logger) (*Server, error) {
	var tlsConfig *tls.Config
	if opts.TLSCert != "" || opts.TLSKey != "" {
		var err error
		if tlsConfig, err = loadTLS(opts); err != nil {
			return nil, err
		}
	}
	lis, err := net.Listen("tcp", opts.Address)
	if err != nil {
		return nil, fmt.Errorf("streaming server: %w", err)
	}
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	cfg := criserver.DefaultConfig
	cfg.Addr = lis.Addr().String()
	cfg.BaseURL = &url.URL{Scheme: scheme, Host: lis.Addr().String()}
	cfg.TLSConfig = tlsConfig
	if opts.IdleTimeout > 0 {
		cfg.StreamIdleTimeout = opts.IdleTimeout
	}
	lib, err := criserver.NewServer(cfg, &adapter{containers: opts.Containers, pods: opts.Pods, log: log})
	if err != nil {
		lis.Close()
		return nil, fmt.Errorf("streaming server: %w", err)
	}
	s := &Server{
		lib: lib,
		http: &http.Server{
			Handler:           nil, // set below: the Server itself
			TLSConfig:         tlsConfig,
			ReadHeaderTimeout: 30 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
		lis: lis,
		tls: tlsConfig != nil,
		log: log,
	}
	s.http.Handler = s
	return s, nil
}

// loadTLS reads the key pair and, if given, the CA client certificates
// must be signed by.
func loadTLS(opts Options) (*tls.Config, error) {
	if opts.TLSCert == "" || opts.TLSKey == "" {
		return nil, errors.New("streaming server: TLS needs both a certificate and a key")
	}
	pair, err := tls.LoadX509KeyPair(opts.TLSCert, opts.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("streaming server: load TLS key pair: %w", err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if opts.TLSClientCA != "" {
		pem, err := os.ReadFile(opts.TLSClientCA)
		if err != nil {
			return nil, fmt.Errorf("streaming server: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("streaming server: %s holds no PEM certificate", opts.TLSClientCA)
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Serve serves until Close.
func (s *Server) Serve() error {
	var err error
	if s.tls {
		err = s.http.ServeTLS(s.lis, "", "")
	} else {
		err = s.http.Serve(s.lis)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops serving and closes every open stream connection.
func (s *Server) Close() error { return s.http.Close() }

// GetExec, GetAttach and GetPortForward hand out a URL for the request.
func (s *Server) GetExec(req *v1.ExecRequest) (*v1.ExecResponse, error) { return s.lib.GetExec(req) }
func (s *Server) GetAttach(req *v1.AttachRequest) (*v1.AttachResponse, error) {
	return s.lib.GetAttach(req)
}
func (s *Server) GetPortForward(req *v1.PortForwardRequest) (*v1.PortForwardResponse, error) {
	return s.lib.GetPortForward(req)
}

// adapter joins the library's streams to our containers and pods.
type adapter struct {
	containers Containers
	pods       Pods
	log        *slog.Logger
}

var _ criserver.Runtime = (*adapter)(nil)

func (a *adapter) Exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	code, err := a.containers.Exec(ctx, id, cmd, streams(in, out, errOut, tty, resize))
	if err != nil {
		a.log.Info("exec failed", "container", id, "err", err)
		return err
	}
	a.log.Debug("exec finished", "container", id, "exit_code", code)
	if code != 0 {
		// The library tells the client the code through its status.
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: code}
	}
	return nil
}

func (a *adapter) Attach(ctx context.Context, id string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	err := a.containers.Attach(ctx, id, streams(in, out, errOut, tty, resize))
	if err != nil {
		a.log.Info("attach failed", "container", id, "err", err)
	}
	return err
}

// PortForward copies between the client's stream and a connection to the
// port in the pod until the pod's side ends. The client's side ending
// first half-closes the connection, so the server in the pod sees the end
// of the request and can still answer.
func (a *adapter) PortForward(ctx context.Context, podID string, port int32, stream io.ReadWriteCloser) error {
	conn, err := a.pods.DialPort(ctx, podID, port)
	if err != nil {
		a.log.Info("port-forward failed", "pod", podID, "port", port, "err", err)
		return err
	}
	defer conn.Close()
	go func() {
		defer safego.Recover(a.log, "port-forward to pod")
		_, err := io.Copy(conn, stream)
		if tc, ok := conn.(interface{ CloseWrite() error }); ok && err == nil {
			_ = tc.CloseWrite()
		} else {
			conn.Close() // the client went away: stop reading from the pod
		}
	}()
	_, err = io.Copy(stream, conn)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("port %d in pod %s: %w", port, podID, err)
	}
	return nil
}

// streams converts the library's streams to ours. Nil streams stay nil
// interfaces, so the runtime knows which ones the client asked for.
func streams(in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) oci.Streams {
	s := oci.Streams{TTY: tty}
	if in != nil {
		s.Stdin = in
	}
	if out != nil {
		s.Stdout = out
	}
	if errOut != nil {
		s.Stderr = errOut
	}
	if resize != nil {
		// Never blocks the library: when the runtime has not taken the
		// last size yet (or never will), the newest replaces it.
		sizes := make(chan oci.TerminalSize, 1)
		go func() {
			defer safego.Recover(nil, "terminal resize relay")
			defer close(sizes)
			for size := range resize {
				ts := oci.TerminalSize{Width: size.Width, Height: size.Height}
				select {
				case sizes <- ts:
				default:
					select {
					case <-sizes:
					default:
					}
					sizes <- ts
				}
			}
		}()
		s.Resize = sizes
	}
	return s
}
