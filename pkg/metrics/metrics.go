// Package metrics is the daemon's Prometheus endpoint: the Go runtime and
// process collectors (goroutines, open file descriptors, memory) and a
// count and latency histogram of CRI calls by method and gRPC code.
package metrics

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/codes"
)

// Metrics holds the daemon's collectors.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New registers the collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cri_runtime", Name: "cri_requests_total",
			Help: "CRI calls served, by method and gRPC status code.",
		}, []string{"method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "cri_runtime", Name: "cri_request_duration_seconds",
			Help:    "Time to serve a CRI call, by method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"method"}),
	}
	m.reg.MustRegister(m.requests, m.latency,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveRPC records one CRI call; fullMethod is gRPC's "/service/Method".
func (m *Metrics) ObserveRPC(fullMethod string, code codes.Code, d time.Duration) {
	method := path.Base(fullMethod)
	m.requests.WithLabelValues(method, code.String()).Inc()
	m.latency.WithLabelValues(method).Observe(d.Seconds())
}

// Server serves /metrics, and Go's runtime profiles when asked to.
type Server struct {
	http *http.Server
	lis  net.Listener
	mux  *http.ServeMux
}

// ServeProfiles adds Go's runtime profiles under /debug/pprof/ (CPU, heap,
// goroutines, execution traces), for finding where the daemon's time and
// memory go under a real load: `go tool pprof
// http://<address>/debug/pprof/profile?seconds=30`. They cost nothing
// until fetched. Call it before Serve.
func (s *Server) ServeProfiles() {
	s.mux.HandleFunc("/debug/pprof/", pprof.Index)
	s.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

// Listen binds addr (host:port) so that a bad address fails the start.
func (m *Metrics) Listen(addr string, log *slog.Logger) (*Server, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	return &Server{http: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, lis: lis, mux: mux}, nil
}

// Addr is the address served.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Serve serves until Close.
func (s *Server) Serve() error {
	if err := s.http.Serve(s.lis); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Close stops serving.
func (s *Server) Close() error { return s.http.Close() }
