package e2e

import (
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestPodSandboxMetrics checks the metrics the kubelet's CRI metrics
// collector reads: each one is described, with as many label values as its
// descriptor has keys, and a busy container's CPU and memory show up.
func TestPodSandboxMetrics(t *testing.T) {
	d, _ := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "metrics")
	ctr := runCtr(t, d, pod, podCfg, shCfg("busy", "head -c 8m /dev/zero > /tmp/f; while :; do :; done"))
	rc := d.RawRuntime(t)
	ctx := ctxT(t)

	descs, err := rc.ListMetricDescriptors(ctx, &runtimeapi.ListMetricDescriptorsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]int{}
	for _, d := range descs.Descriptors {
		keys[d.Name] = len(d.LabelKeys)
	}
	check := func(where string, ms []*runtimeapi.Metric) map[string]uint64 {
		got := map[string]uint64{}
		for _, m := range ms {
			n, ok := keys[m.Name]
			if !ok || len(m.LabelValues) != n || m.Timestamp == 0 || m.Value == nil {
				t.Errorf("%s: metric %+v is not as described (%d label keys)", where, m, n)
			}
			got[m.Name] += m.Value.GetValue()
		}
		return got
	}

	var busy map[string]uint64
	if !eventually(30*time.Second, func() bool {
		resp, err := rc.ListPodSandboxMetrics(ctx, &runtimeapi.ListPodSandboxMetricsRequest{})
		if err != nil || len(resp.PodMetrics) != 1 || resp.PodMetrics[0].PodSandboxId != pod {
			t.Fatalf("ListPodSandboxMetrics = %v, %v; want the one pod", resp, err)
		}
		pm := resp.PodMetrics[0]
		podLevel := check("pod", pm.Metrics)
		if _, ok := podLevel["container_network_receive_bytes_total"]; !ok {
			t.Fatalf("pod metrics lack the network: %v", podLevel)
		}
		if len(pm.ContainerMetrics) != 1 || pm.ContainerMetrics[0].ContainerId != ctr {
			t.Fatalf("container metrics = %v; want the running container", pm.ContainerMetrics)
		}
		busy = check("container", pm.ContainerMetrics[0].Metrics)
		return busy["container_cpu_usage_seconds_total"] >= 1 && busy["container_fs_usage_bytes"] >= 8<<20
	}) {
		t.Fatalf("busy container's metrics never showed a CPU second and its 8 MiB file: %v", busy)
	}
	if busy["container_memory_usage_bytes"] == 0 {
		t.Errorf("memory usage is zero: %v", busy)
	}
}
