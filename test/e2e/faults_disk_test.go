package e2e

// The full-disk sweep: the daemon's root on a small tmpfs, filled before
// each step of an object's life. At every step the daemon keeps serving,
// answers ResourceExhausted, keeps what it had recorded, and once space
// returns the same call succeeds.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// faultRounds is how many times the fault tests repeat a race or a
// session: def in `make test`, $FAULT_ROUNDS under `make soak`.
func faultRounds(t *testing.T, def int) int {
	t.Helper()
	s := os.Getenv("FAULT_ROUNDS")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("FAULT_ROUNDS=%q: want a positive number", s)
	}
	return n
}

// diskFiller fills a filesystem with ballast files until not one more
// page fits, and frees them again.
type diskFiller struct {
	dir string
	n   int
}

// fill writes ballast until the filesystem refuses with ENOSPC, and checks
// that nothing is left available.
func (f *diskFiller) fill(t *testing.T) {
	t.Helper()
	f.n++
	name := filepath.Join(f.dir, fmt.Sprintf("ballast-%d", f.n))
	file, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return // already full
		}
		t.Fatal(err)
	}
	defer file.Close()
	for _, chunk := range []int{1 << 20, 4 << 10, 512} {
		buf := make([]byte, chunk)
		for {
			if _, err := file.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill %s: %v", f.dir, err)
				}
				break
			}
		}
	}
	if avail := f.avail(t); avail != 0 {
		t.Fatalf("%s still has %d bytes available after filling", f.dir, avail)
	}
}

func (f *diskFiller) avail(t *testing.T) uint64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(f.dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}

// free removes every ballast file.
func (f *diskFiller) free(t *testing.T) {
	t.Helper()
	for i := 1; i <= f.n; i++ {
		if err := os.Remove(filepath.Join(f.dir, fmt.Sprintf("ballast-%d", i))); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
}

// daemonView is what the daemon lists: pods, containers and images, each
// with its state. A step on a full disk must leave it as it was.
func daemonView(t *testing.T, d *framework.Daemon) []string {
	t.Helper()
	var out []string
	pods, err := d.Runtime.ListPodSandbox(ctxT(t), nil)
	if err != nil {
		t.Fatalf("ListPodSandbox: %v", err)
	}
	for _, p := range pods {
		out = append(out, fmt.Sprintf("pod %s %s %v", p.Id[:12], p.Metadata.Name, p.State))
	}
	ctrs, err := d.Runtime.ListContainers(ctxT(t), nil)
	if err != nil {
		t.Fatalf("ListContainers: %v", err)
	}
	for _, c := range ctrs {
		out = append(out, fmt.Sprintf("container %s %s %v", c.Id[:12], c.Metadata.Name, c.State))
	}
	imgs, err := d.Images.ListImages(ctxT(t), nil)
	if err != nil {
		t.Fatalf("ListImages: %v", err)
	}
	for _, i := range imgs {
		out = append(out, fmt.Sprintf("image %s %v", i.Id, i.RepoTags))
	}
	slices.Sort(out)
	return out
}

// diskStep is one step of the sweep. act is called on a full disk, where it
// must fail with ResourceExhausted and change nothing the daemon lists
// (unless during says what may change), then again once space returns,
// where it must succeed; after checks the effect.
type diskStep struct {
	name   string
	before func(t *testing.T) // with space: what act acts on
	act    func(t *testing.T) error
	// onFull, when set, replaces the ResourceExhausted check: for a step
	// that is not an RPC (an exit) or may legitimately change a state.
	onFull func(t *testing.T, err error)
	// done: act succeeded on the full disk (onFull checks it), and is not
	// called again once space returns.
	done bool
	// freesSpace: a call the kubelet makes to free a full disk. It must
	// succeed there, on the daemon's disk reserve (pkg/reserve), which is
	// awaited before the disk is filled.
	freesSpace bool
	after      func(t *testing.T)
}

// reserveHeld reports whether the daemon's disk reserve under root has its
// space set aside.
func reserveHeld(root string) bool {
	var st unix.Stat_t
	return unix.Stat(filepath.Join(root, "disk-reserve"), &st) == nil && st.Blocks*512 >= 4<<20
}

func TestFullDiskAtEachStep(t *testing.T) {
	t.Parallel()
	root := smallRoot(t, "64m")
	reg := startRegistry(t, framework.RegistryOptions{}, framework.BusyboxImage)
	plus, _ := busyboxPlus(t, "fulldisk")
	if _, err := reg.Push("library/plus", "latest", plus); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "registries.conf")
	if err := reg.WriteRegistriesConf(conf); err != nil {
		t.Fatal(err)
	}
	d := startPodDaemon(t, "--registries-conf", conf, "--root", root)
	pull(t, d, framework.BusyboxImage, factsOf(t, framework.BusyboxImage))
	disk := &diskFiller{dir: root}
	t.Cleanup(func() { disk.free(t) })

	// A container that exits with 3 when the test says so, through a file
	// in a directory it mounts from the host (not on the full disk).
	trigger := t.TempDir()
	exiter := shCfg("exiter", "while [ ! -e /trigger/go ]; do sleep 0.1; done; exit 3")
	exiter.Mounts = []*runtimeapi.Mount{{ContainerPath: "/trigger", HostPath: trigger}}

	var (
		pod                   string
		podCfg, pod2Cfg       *runtimeapi.PodSandboxConfig
		created, exiterID, id string
	)
	podCfg = podConfig("fulldisk")
	podCfg.LogDirectory = t.TempDir()
	pod2Cfg = podConfig("fulldisk2")
	pod2Cfg.LogDirectory = t.TempDir()
	state := func(id string) runtimeapi.ContainerState { return d.CtrStatus(t, id).State }
	re := func(err error) bool { return status.Code(err) == codes.ResourceExhausted }

	layers := filepath.Join(root, "storage", "overlay")
	layersBefore := dirEntries(t, layers)
	steps := []diskStep{{
		name: "pull",
		act: func(t *testing.T) error {
			_, err := d.Images.PullImage(ctxT(t), spec("docker.io/library/plus:latest"), nil, nil)
			return err
		},
		after: func(t *testing.T) {
			if imageStatus(t, d, "docker.io/library/plus:latest") == nil {
				t.Error("the image pulled once space returned is not listed")
			}
		},
	}, {
		name: "run pod",
		act: func(t *testing.T) error {
			var err error
			pod, err = d.Runtime.RunPodSandbox(ctxT(t), podCfg, "")
			return err
		},
		after: func(t *testing.T) {
			if st := podStatus(t, d, pod, false); st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY {
				t.Errorf("pod %v; want ready", st.Status.State)
			}
		},
	}, {
		name: "create",
		act: func(t *testing.T) error {
			var err error
			created, err = d.Runtime.CreateContainer(ctxT(t), pod, shCfg("sleeper", "exec sleep 3600"), podCfg)
			return err
		},
		after: func(t *testing.T) {
			if s := state(created); s != runtimeapi.ContainerState_CONTAINER_CREATED {
				t.Errorf("container %v; want created", s)
			}
		},
	}, {
		// runc writes under --state, not --root: the process starts. Failing
		// the call then would leave a running container a retry cannot
		// start; the record is written with the exit, or by a restart.
		name: "start",
		act:  func(t *testing.T) error { return d.Runtime.StartContainer(ctxT(t), created) },
		onFull: func(t *testing.T, err error) {
			if err != nil {
				t.Errorf("StartContainer on a full disk: %v; want the process started", err)
			}
			if s := state(created); s != runtimeapi.ContainerState_CONTAINER_RUNNING {
				t.Errorf("container %v after StartContainer on a full disk; want running", s)
			}
		},
		done: true,
	}, {
		name: "exit",
		before: func(t *testing.T) {
			var err error
			exiterID, err = d.Runtime.CreateContainer(ctxT(t), pod, exiter, podCfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Runtime.StartContainer(ctxT(t), exiterID); err != nil {
				t.Fatal(err)
			}
		},
		act:  func(t *testing.T) error { return os.WriteFile(filepath.Join(trigger, "go"), nil, 0o600) },
		done: true,
		onFull: func(t *testing.T, err error) {
			if err != nil {
				t.Fatal(err)
			}
			// The daemon shows the exit at once, from conmon's file,
			// though it cannot record it yet.
			st := d.WaitExited(t, exiterID)
			if st.ExitCode != 3 {
				t.Errorf("exit code %d on a full disk; want 3", st.ExitCode)
			}
		},
		after: func(t *testing.T) {
			if !eventually(time.Minute, func() bool { s, _ := recordedState(t, root, exiterID); return s == "exited" }) {
				s, c := recordedState(t, root, exiterID)
				t.Fatalf("record once space returned: state %q, exit %d; want exited", s, c)
			}
			if _, c := recordedState(t, root, exiterID); c != 3 {
				t.Errorf("recorded exit code %d; want 3", c)
			}
		},
	}, {
		name: "stop",
		before: func(t *testing.T) {
			var err error
			id, err = d.Runtime.CreateContainer(ctxT(t), pod, shCfg("stopped", "exec sleep 3600"), podCfg)
			if err == nil {
				err = d.Runtime.StartContainer(ctxT(t), id)
			}
			if err != nil {
				t.Fatal(err)
			}
		},
		act:        func(t *testing.T) error { return d.Runtime.StopContainer(ctxT(t), id, 0) },
		freesSpace: true,
		after: func(t *testing.T) {
			if st := d.CtrStatus(t, id); st.State != runtimeapi.ContainerState_CONTAINER_EXITED {
				t.Errorf("container %v after StopContainer on a full disk; want exited", st.State)
			}
			if s, _ := recordedState(t, root, id); s != "exited" {
				t.Errorf("record after StopContainer on a full disk: %q; want exited", s)
			}
		},
	}, {
		name:       "remove",
		act:        func(t *testing.T) error { return d.Runtime.RemoveContainer(ctxT(t), id) },
		freesSpace: true,
		after: func(t *testing.T) {
			if _, err := d.Runtime.ContainerStatus(ctxT(t), id, false); !isNotFound(err) {
				t.Errorf("ContainerStatus after the removal: %v; want NotFound", err)
			}
			// Deleted after the call returns, with the writable layer.
			gone := func() bool {
				_, err := os.Stat(filepath.Join(root, "containers", id))
				return errors.Is(err, os.ErrNotExist)
			}
			if !eventually(30*time.Second, gone) {
				t.Errorf("the removed container's record is left")
			}
		},
	}, {
		name: "restart",
		act: func(t *testing.T) error {
			if err := d.Stop(unix.SIGTERM, 30*time.Second); err != nil {
				t.Fatalf("stop daemon: %v", err)
			}
			if err := d.Start(); err != nil {
				t.Fatalf("restart: %v\n%s", err, d.Logs())
			}
			// A restarted daemon writes nothing it must: it serves reads.
			_, err := d.Runtime.Version(ctxT(t), "")
			return err
		},
		onFull: func(t *testing.T, err error) {
			if err != nil {
				t.Errorf("the daemon restarted on a full disk does not answer: %v", err)
			}
			if s := state(created); s != runtimeapi.ContainerState_CONTAINER_RUNNING {
				t.Errorf("container %v after a restart on a full disk; want running", s)
			}
		},
		after: func(t *testing.T) {
			// It writes again: a pod of its own.
			if _, err := d.Runtime.RunPodSandbox(ctxT(t), pod2Cfg, ""); err != nil {
				t.Errorf("RunPodSandbox after a restart on a full disk, space back: %v", err)
			}
		},
	}, {
		name:       "stop pod",
		act:        func(t *testing.T) error { return d.Runtime.StopPodSandbox(ctxT(t), pod) },
		freesSpace: true,
		after: func(t *testing.T) {
			if st := podStatus(t, d, pod, false); st.Status.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
				t.Errorf("pod %v once stopped; want not ready", st.Status.State)
			}
			for _, c := range []string{created, exiterID} {
				if s := state(c); s != runtimeapi.ContainerState_CONTAINER_EXITED {
					t.Errorf("container %s %v in the stopped pod; want exited", c[:12], s)
				}
			}
		},
	}, {
		name:       "remove pod",
		act:        func(t *testing.T) error { return d.Runtime.RemovePodSandbox(ctxT(t), pod) },
		freesSpace: true,
		after: func(t *testing.T) {
			if _, err := d.Runtime.PodSandboxStatus(ctxT(t), pod, false); !isNotFound(err) {
				t.Errorf("PodSandboxStatus after the removal: %v; want NotFound", err)
			}
			for _, c := range []string{created, exiterID} {
				if _, err := os.Stat(filepath.Join(root, "containers", c)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the removed pod's container %s is left: %v", c[:12], err)
				}
			}
		},
	}, {
		name:       "remove image",
		act:        func(t *testing.T) error { return d.Images.RemoveImage(ctxT(t), spec("docker.io/library/plus:latest")) },
		freesSpace: true,
		after: func(t *testing.T) {
			if imageStatus(t, d, "docker.io/library/plus:latest") != nil {
				t.Error("the removed image is still listed")
			}
			// Every layer the sweep made (the image's, the containers')
			// is gone: no step on a full disk left one behind.
			if now := dirEntries(t, layers); !slices.Equal(now, layersBefore) {
				t.Errorf("layers left: %v; before the sweep %v", now, layersBefore)
			}
		},
	}}

	for _, step := range steps {
		ok := t.Run(step.name, func(t *testing.T) {
			if step.before != nil {
				step.before(t)
			}
			if step.freesSpace && !eventually(time.Minute, func() bool { return reserveHeld(root) }) {
				t.Fatal("the daemon's disk reserve is not set aside again")
			}
			view := daemonView(t, d)
			disk.fill(t)
			err := step.act(t)
			switch {
			case step.freesSpace:
				if err != nil {
					t.Errorf("on a full disk: %v; want success, on the disk reserve", err)
				}
			case step.onFull != nil:
				step.onFull(t, err)
			default:
				if !re(err) {
					t.Errorf("on a full disk: %v; want ResourceExhausted", err)
				}
				if now := daemonView(t, d); !slices.Equal(now, view) {
					t.Errorf("a failed step on a full disk changed what the daemon lists:\nbefore %s\nafter  %s",
						strings.Join(view, "\n       "), strings.Join(now, "\n       "))
				}
			}
			if _, err := d.Runtime.Version(ctxT(t), ""); err != nil {
				t.Fatalf("the daemon no longer answers on a full disk: %v\n%s", err, d.ExitErr())
			}
			if disk.avail(t) != 0 && !step.freesSpace {
				t.Errorf("the disk is no longer full (%d bytes free): the step was not tested on a full disk", disk.avail(t))
			}
			disk.free(t)
			if !step.done && !step.freesSpace {
				if err := step.act(t); err != nil {
					t.Fatalf("once space returned: %v", err)
				}
			}
			if step.after != nil {
				step.after(t)
			}
		})
		if !ok {
			break // later steps act on what this one made
		}
	}
	if logs := d.Logs(); strings.Contains(logs, "panic") {
		t.Errorf("the daemon panicked:\n%s", logs)
	}
}
