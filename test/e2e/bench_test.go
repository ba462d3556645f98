package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// BenchmarkPodLifecycle times RunPodSandbox, StopPodSandbox and
// RemovePodSandbox on our daemon and reports their medians. When
// CONTAINERD_CRI_SOCKET names a running containerd's CRI socket (with its
// sandbox image already pulled), the same loop runs against containerd in the
// same process and the ratios ours/containerd are reported too:
//
//	sudo CONTAINERD_CRI_SOCKET=/run/containerd/containerd.sock make bench
func BenchmarkPodLifecycle(b *testing.B) {
	d := startDaemonB(b)
	ours := podLifecycle(b, d.Runtime)
	report(b, "", ours)
	sock := os.Getenv("CONTAINERD_CRI_SOCKET")
	if sock == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rt, err := remote.NewRemoteRuntimeServiceBuilder().WithEndpoint("unix://" + sock).
		WithConnectionTimeout(2 * time.Minute).WithTracerProvider(nil).Build(ctx)
	if err != nil {
		b.Fatalf("connect to containerd at %s: %v", sock, err)
	}
	theirs := podLifecycle(b, rt)
	report(b, "containerd-", theirs)
	for _, step := range []string{"run", "stop", "remove"} {
		b.ReportMetric(float64(ours[step])/float64(theirs[step]), step+"-ratio")
	}
}

// podLifecycle runs b.N pods through their life and returns each step's median.
func podLifecycle(b *testing.B, rt internalapi.RuntimeService) map[string]time.Duration {
	ctx := context.Background()
	times := map[string][]time.Duration{}
	for i := 0; i < b.N; i++ {
		cfg := &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: fmt.Sprintf("bench-%d", i), Namespace: "bench", Uid: fmt.Sprintf("bench-uid-%d-%d", time.Now().UnixNano(), i)},
			// What the kubelet sends for an ordinary pod: its own PID
			// namespace per container (POD, the zero value, means shared).
			Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
			}},
		}
		start := time.Now()
		id, err := rt.RunPodSandbox(ctx, cfg, "")
		if err != nil {
			b.Fatalf("RunPodSandbox: %v", err)
		}
		times["run"] = append(times["run"], time.Since(start))
		start = time.Now()
		if err := rt.StopPodSandbox(ctx, id); err != nil {
			b.Fatalf("StopPodSandbox: %v", err)
		}
		times["stop"] = append(times["stop"], time.Since(start))
		start = time.Now()
		if err := rt.RemovePodSandbox(ctx, id); err != nil {
			b.Fatalf("RemovePodSandbox: %v", err)
		}
		times["remove"] = append(times["remove"], time.Since(start))
	}
	out := map[string]time.Duration{}
	for step, ts := range times {
		slices.Sort(ts)
		out[step] = ts[len(ts)/2]
	}
	return out
}

func report(b *testing.B, prefix string, medians map[string]time.Duration) {
	for step, d := range medians {
		b.ReportMetric(float64(d.Microseconds())/1000, prefix+step+"-p50-ms")
	}
}

func startDaemonB(b *testing.B) *framework.Daemon {
	b.Helper()
	return framework.StartDaemon(b, framework.Options{Binary: binary, Args: []string{"--registries-conf", registriesConf, "--log-level", "info"}})
}
