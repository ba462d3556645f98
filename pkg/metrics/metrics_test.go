package metrics

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

func TestEndpointServesCallsAndRuntime(t *testing.T) {
	m := New()
	m.ObserveRPC("/runtime.v1.RuntimeService/RunPodSandbox", codes.OK, 20*time.Millisecond)
	m.ObserveRPC("/runtime.v1.RuntimeService/RunPodSandbox", codes.NotFound, time.Millisecond)
	s, err := m.Listen("127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	defer s.Close()
	resp, err := http.Get("http://" + s.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`cri_runtime_cri_requests_total{code="OK",method="RunPodSandbox"} 1`,
		`cri_runtime_cri_requests_total{code="NotFound",method="RunPodSandbox"} 1`,
		`cri_runtime_cri_request_duration_seconds_count{method="RunPodSandbox"} 2`,
		"go_goroutines ",
		"process_open_fds ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestProfilesOnlyWhenAsked: /debug/pprof/ is served only after
// ServeProfiles, and then gives a heap profile.
func TestProfilesOnlyWhenAsked(t *testing.T) {
	for _, profiling := range []bool{false, true} {
		s, err := New().Listen("127.0.0.1:0", slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if profiling {
			s.ServeProfiles()
		}
		go s.Serve()
		resp, err := http.Get("http://" + s.Addr() + "/debug/pprof/heap?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		s.Close()
		served := resp.StatusCode == http.StatusOK && strings.Contains(string(body), "heap profile")
		if served != profiling {
			t.Errorf("with profiling %v: /debug/pprof/heap answered %d, a heap profile: %v", profiling, resp.StatusCode, served)
		}
	}
}
