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
	return medians(times)
}

func medians(times map[string][]time.Duration) map[string]time.Duration {
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
	return framework.StartDaemon(b, framework.Options{Binary: benchBinary, Args: []string{"--registries-conf", registriesConf, "--log-level", "info"}})
}

// BenchmarkContainerLifecycle times CreateContainer, StartContainer and
// StopContainer (timeout 0) of a sleeping busybox container in one pod, on
// our daemon and, with CONTAINERD_CRI_SOCKET and CONTAINERD_IMAGE (a busybox
// image containerd has already pulled) set, on containerd in the same run.
func BenchmarkContainerLifecycle(b *testing.B) {
	d := startDaemonB(b)
	ctx := context.Background()
	ref, err := d.Images.PullImage(ctx, &runtimeapi.ImageSpec{Image: framework.BusyboxImage}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ours := containerLifecycle(b, d.Runtime, ref)
	report(b, "", ours)
	sock, img := os.Getenv("CONTAINERD_CRI_SOCKET"), os.Getenv("CONTAINERD_IMAGE")
	if sock == "" || img == "" {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rt, err := remote.NewRemoteRuntimeServiceBuilder().WithEndpoint("unix://" + sock).
		WithConnectionTimeout(2 * time.Minute).WithTracerProvider(nil).Build(cctx)
	if err != nil {
		b.Fatalf("connect to containerd at %s: %v", sock, err)
	}
	theirs := containerLifecycle(b, rt, img)
	report(b, "containerd-", theirs)
	for _, step := range []string{"create", "start", "stop"} {
		b.ReportMetric(float64(ours[step])/float64(theirs[step]), step+"-ratio")
	}
}

func containerLifecycle(b *testing.B, rt internalapi.RuntimeService, image string) map[string]time.Duration {
	ctx := context.Background()
	podCfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "bench-ctr", Namespace: "bench", Uid: fmt.Sprintf("bench-ctr-%d", time.Now().UnixNano())},
		LogDirectory: b.TempDir(),
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
		}},
	}
	pod, err := rt.RunPodSandbox(ctx, podCfg, "")
	if err != nil {
		b.Fatalf("RunPodSandbox: %v", err)
	}
	defer func() {
		_ = rt.StopPodSandbox(ctx, pod)
		_ = rt.RemovePodSandbox(ctx, pod)
	}()
	times := map[string][]time.Duration{}
	for i := 0; i < b.N; i++ {
		cfg := &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: fmt.Sprintf("c%d", i)},
			Image:    &runtimeapi.ImageSpec{Image: image},
			Command:  []string{"/bin/sleep", "600"},
			LogPath:  fmt.Sprintf("c%d.log", i),
			Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
			}},
		}
		start := time.Now()
		id, err := rt.CreateContainer(ctx, pod, cfg, podCfg)
		if err != nil {
			b.Fatalf("CreateContainer: %v", err)
		}
		times["create"] = append(times["create"], time.Since(start))
		start = time.Now()
		if err := rt.StartContainer(ctx, id); err != nil {
			b.Fatalf("StartContainer: %v", err)
		}
		times["start"] = append(times["start"], time.Since(start))
		start = time.Now()
		if err := rt.StopContainer(ctx, id, 0); err != nil {
			b.Fatalf("StopContainer: %v", err)
		}
		times["stop"] = append(times["stop"], time.Since(start))
		if err := rt.RemoveContainer(ctx, id); err != nil {
			b.Fatalf("RemoveContainer: %v", err)
		}
	}
	return medians(times)
}
