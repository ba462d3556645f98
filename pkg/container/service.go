package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/cgroup"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/events"
	"github.com/cri-runtime/cri-runtime/pkg/handover"
	"github.com/cri-runtime/cri-runtime/pkg/image"
	"github.com/cri-runtime/cri-runtime/pkg/index"
	"github.com/cri-runtime/cri-runtime/pkg/keylock"
	"github.com/cri-runtime/cri-runtime/pkg/oci"
	"github.com/cri-runtime/cri-runtime/pkg/oci/spec"
	"github.com/cri-runtime/cri-runtime/pkg/proc"
	"github.com/cri-runtime/cri-runtime/pkg/record"
	"github.com/cri-runtime/cri-runtime/pkg/safego"
	"github.com/cri-runtime/cri-runtime/pkg/sandbox"
)

// Images is what containers need of the image service.
type Images interface {
	Status(ctx context.Context, ref string) (*image.Image, error)
	CreateWritableLayer(id, name string, img image.ID, mappings *image.IDMappings) (*image.WritableLayer, error)
	RemoveWritableLayer(id string) error
	WritableLayerUsage(id string) (image.Usage, error)
	MountImage(img image.ID) (string, error)
	UnmountImage(img image.ID) error
	WritableLayerDiff(id string) (io.ReadCloser, error)
	ApplyWritableLayerDiff(id string, diff io.Reader) error
}

// Pods finds the pod a container belongs to.
type Pods interface {
	Get(id string) (*sandbox.Sandbox, error)
	// Admit holds off the pod's stop and removal while a container is
	// created in it, and fails unless the pod is ready (sandbox.Manager).
	Admit(id string) (release func(), err error)
}

// Runtime runs OCI bundles (oci.Runtime).
type Runtime interface {
	Create(ctx context.Context, o oci.CreateOptions) (int, error)
	Start(ctx context.Context, id string) error
	Kill(ctx context.Context, id string, sig syscall.Signal) error
	Wait(ctx context.Context, id string) (oci.Exit, error)
	Exited(id string) (oci.Exit, bool)
	Delete(ctx context.Context, id string) error
	ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (*oci.ExecResult, error)
	ReopenLog(id, logPath string) error
	State(ctx context.Context, id string) (oci.State, error)
	Exec(ctx context.Context, id string, cmd []string, s oci.Streams) (int, error)
	Attach(ctx context.Context, id string, s oci.Streams, stdinOnce bool) error
	Update(ctx context.Context, id string, res *specs.LinuxResources) error
	Checkpoint(ctx context.Context, id string, o oci.CheckpointOptions) error
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
}

var _ Runtime = (*oci.Runtime)(nil)

// Options configure the Service.
type Options struct {
	Root         string // records go under Root/containers
	CgroupDriver cgroup.Driver
	Images       Images
	Pods         Pods
	// Runtimes are the OCI runtimes by RuntimeClass handler name; pods that
	// name no handler use DefaultHandler's.
	Runtimes       map[string]Runtime
	DefaultHandler string
	Events         *events.Broker // may be nil
	// Controllers are the cgroup controllers of the host (cgroup.Controllers);
	// limits through others are dropped. nil means all.
	Controllers spec.Controllers
	// AppArmor is the node's AppArmor; nil on nodes without it.
	AppArmor AppArmor
	// CRIU says whether checkpoint and restore work here (nil: they do not).
	CRIU CRIU
	// ArchiveForbidden are directories, besides Root, where checkpoint
	// archives may not be written (the volatile state).
	ArchiveForbidden []string
}

// AppArmor is the node's AppArmor as containers need it (pkg/apparmor).
type AppArmor interface {
	spec.AppArmorHost
	// EnsureDefault loads the RuntimeDefault profile unless it is loaded.
	EnsureDefault(ctx context.Context) error
}

// Service runs containers. Safe for concurrent use: operations on one
// container are serialized by its lock, different containers run in
// parallel.
type Service struct {
	opts Options
	log  *slog.Logger
	// oomScoreAdjMin is our own oom_score_adj: without CAP_SYS_RESOURCE no
	// child may go below it, so requests are clamped to it.
	oomScoreAdjMin int

	mu         sync.Mutex
	containers map[string]*Container
	names      map[string]string // pod/name/attempt → ID
	// handover holds the CreateContainers in flight, and the containers
	// whose client gave up before receiving them, by name key.
	handover handover.Group
	locks    keylock.Locks // per-container operation locks
	// persist orders the record updates of one container, so the file
	// always holds the latest state (the exit watcher and Stop may both
	// record an exit).
	persist keylock.Locks
	samples cgroup.Sampler // CPU samples, for usage rates
	// removing holds the removals whose runc container, writable layer
	// or record are still being deleted (removal.go).
	removing removals
	// warned holds the missing controllers already logged, once each.
	warned sync.Map
}

// warnMissingControllers logs, once per controller, that the limits r sets
// through a controller the host lacks are not applied.
func (s *Service) warnMissingControllers(r spec.Resources) {
	for _, c := range spec.MissingControllers(r, s.opts.Controllers) {
		if _, seen := s.warned.LoadOrStore(c, true); !seen {
			s.log.Warn("cgroup controller is not available to the OCI runtime: its limits are not applied", "controller", c)
		}
	}
}

// New loads the recorded containers and resumes watching those that were
// running: an exit that happened while the daemon was down is found in
// conmon's exit file.
func New(opts Options, log *slog.Logger) (*Service, error) {
	s := &Service{opts: opts, log: log, containers: map[string]*Container{}, names: map[string]string{}}
	if b, err := os.ReadFile("/proc/self/oom_score_adj"); err == nil {
		s.oomScoreAdjMin, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	// A checkpoint's work files left by a crash.
	if err := os.RemoveAll(s.checkpointWorkDir()); err != nil {
		log.Warn("remove interrupted checkpoints", "err", err)
	}
	dir := filepath.Join(opts.Root, "containers")
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, e := range entries {
		c := &Container{}
		if err := record.Load(filepath.Join(dir, e.Name(), "container.json"), c); err != nil || c.ID != e.Name() {
			log.Warn("skip unreadable container record", "container", e.Name(), "err", err)
			continue
		}
		if c.State == creating || c.Removing {
			s.undoInterrupted(c)
			continue
		}
		if c.State == Created || c.State == Running {
			s.reconcile(c)
		}
		s.containers[c.ID] = c
		s.names[c.nameKey()] = c.ID
	}
	// The exit watchers read and write the records: they start once all
	// are loaded (and the map is no longer being walked).
	var running []string
	for id, c := range s.containers {
		if c.State == Running {
			running = append(running, id)
		}
	}
	for _, id := range running {
		safego.Go(s.log, "watch container exit", func() { s.watch(id) })
	}
	return s, nil
}

func (s *Service) recordPath(id string) string {
	return filepath.Join(s.opts.Root, "containers", id, "container.json")
}

// lock serializes operations on one container.
func (s *Service) lock(id string) func() { return s.locks.Lock(id) }

// update is the only way a container's record changes: change is applied
// to a copy, the copy is persisted, and only then does it replace the live
// record. Nobody can observe a state (an exit, say) that a crash right
// after would lose. Updates of one container are ordered by its persist
// lock.
func (s *Service) update(id string, change func(*Container)) (*Container, error) {
	defer s.persist.Lock(id)()
	s.mu.Lock()
	c, ok := s.containers[id]
	if !ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("container %s: %w", id, errdefs.ErrNotFound)
	}
	next := c.clone()
	s.mu.Unlock()
	change(next)
	if err := record.Save(s.recordPath(id), next); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.containers[id] == c { // forget takes the persist lock too: still ours
		s.containers[id] = next
	}
	s.mu.Unlock()
	return next.clone(), nil
}

// updateUnsaved applies change to the live record only, for a side effect
// that already happened when its record could not be written (a full
// disk): the record on disk stays behind until the next update of the
// container saves the whole of it, and start-up's reconcile works the
// same out from runc meanwhile.
func (s *Service) updateUnsaved(id string, change func(*Container)) {
	defer s.persist.Lock(id)()
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.containers[id]; ok {
		next := c.clone()
		change(next)
		s.containers[id] = next
	}
}

// Get returns a copy of the container with this ID or unique ID prefix,
// with an exit recorded by conmon but not yet seen applied.
func (s *Service) Get(id string) (*Container, error) {
	s.mu.Lock()
	c, err := index.Find(s.containers, id, "container")
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	snapshot := c.clone()
	s.mu.Unlock()
	if snapshot.State == Running {
		if exit, ok := s.runtimeOf(snapshot).Exited(snapshot.ID); ok {
			c, err := s.recordExit(snapshot.ID, exit)
			if err == nil || errors.Is(err, errdefs.ErrNotFound) {
				return c, err
			}
			// The record cannot be written now (a full disk): show the
			// exit anyway. It is not lost: conmon's exit file keeps it,
			// and the exit watcher records it once it can.
			s.log.Warn("show an exit not yet recorded", "container", snapshot.ID, "err", err)
			applyExit(snapshot, exit)
		}
	}
	return snapshot, nil
}

// runtimeOf is the OCI runtime of the container's handler.
func (s *Service) runtimeOf(c *Container) Runtime {
	if r, ok := s.opts.Runtimes[c.Handler]; ok {
		return r
	}
	return s.opts.Runtimes[s.opts.DefaultHandler]
}

// runtimeByID is runtimeOf for a container known by ID.
func (s *Service) runtimeByID(id string) Runtime {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.containers[id]; ok {
		return s.runtimeOf(c)
	}
	return s.opts.Runtimes[s.opts.DefaultHandler]
}

// reconcile looks again, at start-up, at a container recorded as created
// or running, against what runc and conmon know:
//   - a StartContainer cut short after "runc start" left a "created"
//     container running (or exited): the record says so now;
//   - a created container whose "runc create" is still to come (Deferred)
//     stays created while its root filesystem is mounted; a StartContainer
//     cut short before "runc start" leaves a runc container, deleted here;
//   - runc no longer knows it and conmon left no exit (the host rebooted,
//     with --state on tmpfs): its process is gone and how it ended is not
//     known, so it is recorded as exited with code 255, reason Unknown.
func (s *Service) reconcile(c *Container) {
	rt := s.runtimeOf(c)
	if _, exited := rt.Exited(c.ID); exited {
		// Get and the exit watcher record it. A record still saying
		// created belongs to a StartContainer whose record was never
		// written (a crash, a full disk): conmon's exit file says the
		// process ran, so it is running until the exit is applied.
		if c.State == Created {
			c.State = Running
			s.log.Info("found an exit of a container started by a StartContainer not recorded", "container", c.ID)
		}
		return
	}
	st, err := rt.State(context.Background(), c.ID)
	if c.Restore != nil && c.State == Created {
		// Made from a checkpoint: runc knows it only once Start restored it.
		if err != nil || st.Status != "running" {
			return
		}
		c.State, c.StartedAt, c.Pid = Running, c.CreatedAt, st.Pid
		c.RestoredFrom, c.Restore = c.Restore, nil
		s.log.Info("found a container restored by an interrupted StartContainer", "container", c.ID)
		if err := record.Save(s.recordPath(c.ID), c); err != nil {
			s.log.Warn("save container", "container", c.ID, "err", err)
		}
		return
	}
	if err == nil && st.Status == "paused" {
		// Only a pod checkpoint pauses containers, and it resumes them
		// before it returns: the daemon died in between. Thaw it.
		if err := rt.Resume(context.Background(), c.ID); err != nil {
			s.log.Warn("resume a container an interrupted pod checkpoint left paused", "container", c.ID, "err", err)
		} else {
			s.log.Info("resumed a container an interrupted pod checkpoint left paused", "container", c.ID)
		}
		return
	}
	switch {
	case c.Deferred && errors.Is(err, errdefs.ErrNotFound) && mounted(c.Spec):
		return // created, waiting for Start to run "runc create"
	case c.Deferred && err == nil && st.Status == "created":
		// A StartContainer cut short between "runc create" and "runc
		// start": take its runc container away, the next Start makes it.
		if err := rt.Delete(context.Background(), c.ID); err != nil {
			s.log.Warn("delete the runc container of an interrupted start", "container", c.ID, "err", err)
		}
		return
	case errors.Is(err, errdefs.ErrNotFound):
		now := time.Now()
		c.State, c.ExitCode, c.FinishedAt = Exited, 255, now
		if c.StartedAt.IsZero() {
			c.StartedAt = now
		}
		c.Reason, c.Message = "Unknown", "the container's process was lost while the runtime was down (host reboot?)"
		s.log.Warn("container lost while the daemon was down; recording it as exited", "container", c.ID)
	case err != nil || st.Status == "created" || c.State == Running:
		return // unchanged, or runc cannot tell now
	default:
		startedAt := c.CreatedAt // runc created the process then; start is later
		if t, ok := processStartTime(c.Pid); ok && st.Status == "running" {
			startedAt = t
		}
		c.State, c.StartedAt, c.Deferred = Running, startedAt, false
		if c.Pid == 0 {
			c.Pid = st.Pid
		}
		s.log.Info("found a container started by an interrupted StartContainer", "container", c.ID, "runc_status", st.Status)
	}
	if err := record.Save(s.recordPath(c.ID), c); err != nil {
		s.log.Warn("save container", "container", c.ID, "err", err)
	}
}

// mounted tells whether the spec's root filesystem is still a mount point
// (another device than its parent directory's): after a reboot the writable
// layer is no longer mounted and a deferred create must not run on the
// empty directory.
func mounted(sp *specs.Spec) bool {
	if sp == nil || sp.Root == nil || sp.Root.Path == "" {
		return false
	}
	var root, parent unix.Stat_t
	if unix.Stat(sp.Root.Path, &root) != nil || unix.Stat(filepath.Dir(sp.Root.Path), &parent) != nil {
		return false
	}
	return root.Dev != parent.Dev
}

// undoInterrupted removes a container whose CreateContainer or
// RemoveContainer was cut short (the daemon died): its runc container and
// conmon if they got that far, its writable layer, and its record. Each step
// tolerates what never happened.
func (s *Service) undoInterrupted(c *Container) {
	ctx := context.Background()
	steps := []func() error{
		func() error { return s.runtimeOf(c).Delete(ctx, c.ID) },
		func() error { return s.opts.Images.RemoveWritableLayer(c.ID) },
		func() error { s.unmountImageVolumes(c.Mounts); return nil },
		func() error { return os.RemoveAll(filepath.Dir(s.recordPath(c.ID))) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			s.log.Warn("undo interrupted container", "container", c.ID, "err", err)
			return
		}
	}
	s.log.Info("undid a container whose creation was interrupted", "container", c.ID, "pod", c.PodID, "name", c.Name)
}

// processStartTime is when process pid began, from /proc (its start in
// clock ticks after boot, and the boot time). runc's init process is
// created by "runc create" and exec's the container's program at start, so
// this is the create time: the best a restarted daemon can know.
func processStartTime(pid int) (time.Time, bool) {
	st, err := proc.ReadStat(pid)
	if err != nil {
		return time.Time{}, false
	}
	ticks := st.StartTicks
	procStat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, false
	}
	for _, line := range strings.Split(string(procStat), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			boot, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return time.Time{}, false
			}
			const hz = 100 // USER_HZ, fixed on Linux
			return time.Unix(boot, 0).Add(time.Duration(ticks) * time.Second / hz), true
		}
	}
	return time.Time{}, false
}
