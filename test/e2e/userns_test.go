package e2e

// Pods in a user namespace of their own (the kubelet's hostUsers: false):
// root in the pod is an unprivileged user on the node, yet owns the pod's
// files and volumes as it sees them.

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// usernsHostID is where the pods' root lands on the node in these tests.
const usernsHostID = 200000

func usernsPodConfig(name string, pid runtimeapi.NamespaceMode, maps ...*runtimeapi.IDMapping) *runtimeapi.PodSandboxConfig {
	cfg := podConfig(name)
	cfg.LogDirectory = ""
	if len(maps) == 0 {
		maps = []*runtimeapi.IDMapping{{ContainerId: 0, HostId: usernsHostID, Length: 65536}}
	}
	nsOptions(cfg).Pid = pid
	nsOptions(cfg).UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: maps, Gids: maps}
	return cfg
}

func TestUserNamespacePod(t *testing.T) {
	t.Parallel()
	d, _ := startCtrDaemon(t)
	st, err := d.Runtime.Status(ctxT(t), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range st.GetRuntimeHandlers() {
		if h.GetName() == "" && !h.GetFeatures().GetUserNamespaces() {
			t.Fatalf("the default handler does not advertise user namespaces (runc >= 1.2 with idmapped mounts is installed by hack/install-deps.sh): %v", h)
		}
	}

	for _, pid := range []runtimeapi.NamespaceMode{runtimeapi.NamespaceMode_CONTAINER, runtimeapi.NamespaceMode_POD} {
		t.Run("pid "+pid.String(), func(t *testing.T) {
			podCfg := usernsPodConfig("userns-"+strings.ToLower(pid.String()), pid)
			podCfg.LogDirectory = t.TempDir()
			pod := runPod(t, d, podCfg)

			// The pod's namespaces are owned by its user namespace.
			ps := podStatus(t, d, pod, false).GetStatus()
			if u := ps.GetLinux().GetNamespaces().GetOptions().GetUsernsOptions(); u.GetMode() != runtimeapi.NamespaceMode_POD || len(u.GetUids()) != 1 || u.GetUids()[0].GetHostId() != usernsHostID {
				t.Errorf("PodSandboxStatus userns options %v; want mode POD with the mapping", u)
			}

			vol := t.TempDir() // made by root on the node
			if err := os.WriteFile(filepath.Join(vol, "from-node"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg := shCfg("main", "exec sleep 1000")
			cfg.Linux.SecurityContext.NamespaceOptions = nsOptions(podCfg)
			cfg.Mounts = []*runtimeapi.Mount{{ContainerPath: "/vol", HostPath: vol}}
			id := runCtr(t, d, pod, podCfg, cfg)

			// On the node the container's root is usernsHostID.
			pid := runningPid(t, d, id)
			if s := readTrimmed(t, "/proc/"+strconv.Itoa(pid)+"/status"); !strings.Contains(s, "\nUid:\t"+strconv.Itoa(usernsHostID)+"\t") {
				t.Errorf("the container's process on the node is not uid %d:\n%s", usernsHostID, s)
			}
			rc := d.RawRuntime(t)
			// Inside, it is root, with the kubelet's mapping, and owns its
			// image's files, its writable layer and the volume.
			out := mustExec(t, rc, id, "sh", "-c", `id -u; cat /proc/self/uid_map; stat -c %u:%g /bin/busybox /vol/from-node /vol; touch /new /vol/from-pod && echo written; hostname`)
			fields := strings.Fields(out)
			want := []string{"0", "0", strconv.Itoa(usernsHostID), "65536", "0:0", "0:0", "0:0", "written", podCfg.Hostname}
			if strings.Join(fields, " ") != strings.Join(want, " ") {
				t.Errorf("inside the pod: %q; want %q", fields, want)
			}
			// ... and what it writes there is root's on the node too (the
			// idmapped mount maps it back).
			var stt syscall.Stat_t
			if err := syscall.Stat(filepath.Join(vol, "from-pod"), &stt); err != nil || stt.Uid != 0 {
				t.Errorf("file the pod wrote in its volume: uid %d, %v; want root's", stt.Uid, err)
			}
			// Root in the pod is nobody on the node: the node's own files
			// outside the pod's mounts are out of reach.
			if _, _, err := d.Runtime.ExecSync(ctxT(t), id, []string{"sh", "-c", "echo 1 > /proc/sys/kernel/panic"}, 0); err == nil {
				t.Error("root in the pod could write a node-wide sysctl")
			}
		})
	}
}

func TestUserNamespaceInvalid(t *testing.T) {
	t.Parallel()
	d := startPodDaemon(t)
	two := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 1000, Length: 100000}, {ContainerId: 0, HostId: 2000, Length: 100000}}
	notZero := []*runtimeapi.IDMapping{{ContainerId: 1, HostId: 1000, Length: 100000}}
	empty := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 1000, Length: 0}}
	for name, cfg := range map[string]*runtimeapi.PodSandboxConfig{
		"two mappings":       usernsPodConfig("two", runtimeapi.NamespaceMode_CONTAINER, two...),
		"container 0 absent": usernsPodConfig("notzero", runtimeapi.NamespaceMode_CONTAINER, notZero...),
		"empty mapping":      usernsPodConfig("empty", runtimeapi.NamespaceMode_CONTAINER, empty...),
	} {
		if _, err := d.Runtime.RunPodSandbox(ctxT(t), cfg, ""); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: RunPodSandbox = %v; want InvalidArgument", name, err)
		}
	}
	for _, mode := range []runtimeapi.NamespaceMode{runtimeapi.NamespaceMode_CONTAINER, runtimeapi.NamespaceMode_TARGET} {
		cfg := podConfig("mode-" + strings.ToLower(mode.String()))
		nsOptions(cfg).UsernsOptions = &runtimeapi.UserNamespace{Mode: mode}
		if _, err := d.Runtime.RunPodSandbox(ctxT(t), cfg, ""); status.Code(err) != codes.InvalidArgument {
			t.Errorf("user namespace mode %v: RunPodSandbox = %v; want InvalidArgument", mode, err)
		}
	}
	if pods := listPods(t, d, nil); len(pods) != 0 {
		t.Errorf("refused pods are listed: %v", pods)
	}
}
