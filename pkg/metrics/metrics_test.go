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
