package framework

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RawRuntime is a plain gRPC client of the daemon's runtime service, for
// answers the kubelet's client rewrites (ExecSync's exit code and timeout)
// or cannot receive (responses over its 16 MiB limit). It accepts responses
// of up to 64 MiB and is closed when the test ends; it reconnects by itself
// across daemon restarts.
func (d *Daemon) RawRuntime(t testing.TB) runtimeapi.RuntimeServiceClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+d.Socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		t.Fatalf("dial %s: %v", d.Socket, err)
	}
	t.Cleanup(func() { conn.Close() })
	return runtimeapi.NewRuntimeServiceClient(conn)
}

// CgroupPaths reads /proc/<pid>/cgroup into a map from controller (cpu,
// memory, name=systemd, "" for the unified hierarchy) to the cgroup path.
func CgroupPaths(pid int) (map[string]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("/proc/%d/cgroup: bad line %q", pid, l)
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out, nil
}

// CgroupV1File reads (trimmed) a file of the cgroup v1 controller's
// hierarchy that process pid is in, e.g. CgroupV1File(pid, "memory",
// "memory.limit_in_bytes"). It finds the hierarchy's mount under
// /sys/fs/cgroup whether it is alone (cpu) or co-mounted (cpu,cpuacct).
func CgroupV1File(pid int, controller, file string) (string, error) {
	paths, err := CgroupPaths(pid)
	if err != nil {
		return "", err
	}
	rel, ok := paths[controller]
	if !ok {
		return "", fmt.Errorf("process %d is in no %s cgroup (cgroup v1 hierarchy missing?): %v", pid, controller, paths)
	}
	mounts, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, m := range mounts {
		if slices.Contains(strings.Split(filepath.Base(m), ","), controller) {
			b, err := os.ReadFile(filepath.Join(m, rel, file))
			return strings.TrimSpace(string(b)), err
		}
	}
	return "", fmt.Errorf("no cgroup v1 hierarchy for %s under /sys/fs/cgroup", controller)
}
