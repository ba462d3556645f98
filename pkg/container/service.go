package container

import (
	"context"
	"errors"
	"io"
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
	"github.com/cri-runtime/cri-runtime/pkg/keylock"
	"github.com/cri-runtime/cri-runtime/pkg/oci"
	"github.com/cri-runtime/cri-runtime/pkg/oci/spec"
	"github.com/cri-runtime/cri-runtime/pkg/proc"
	"github.com/cri-runtime/cri-runtime/pkg/safego"
	"github.com/cri-runtime/cri-runtime/pkg/sandbox"
	"github.com/cri-runtime/cri-runtime/pkg/store"
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

// Pods finds the pod a container belongs to (pod.Gate).
type Pods interface {
	Get(id string) (*sandbox.Sandbox, error)
	// Admit holds off the pod's stop and removal while a container is
	// created or started in it, and fails unless the pod is ready.
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
	// Host is the node's facts the spec builder needs (its device nodes,
	// the capability bounding set); nil: New reads this node's
	// (spec.ProbeHost).
	Host *spec.Host
	// CRIU says whether checkpoint and restore work here (nil: they do not).
	CRIU CRIU
	// ArchiveForbidden are directories, besides Root, where checkpoint
	// archives may not be written (the volatile state).
	ArchiveForbidden []string
	// Removals are where the background halves of RemoveContainer go, shared
	// with the image service that waits for them (removal.go). nil: the
	// service's own.
	Removals *Removals
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
	// host is the node as the spec builder sees it, read once in New.
	host spec.Host

	// store holds the records; it orders the updates of one container,
	// so the file always holds the latest state (the exit watcher and
	// Stop may both record an exit).
	store *store.Store[Container, State]

	mu    sync.Mutex
	names map[string]string // pod/name/attempt → ID
	// handover holds the CreateContainers in flight, and the containers
	// whose client gave up before receiving them, by name key.
	handover handover.Group
	locks    keylock.Locks  // per-container operation locks
	samples  cgroup.Sampler // CPU samples, for usage rates
	// stopping holds the containers a stop is killing: an exec that fails
	// under such a stop failed because of it (exec.go, notRunning).
	stopping sync.Map
	// removing holds the removals whose runc container, writable layer
	// or record are still being deleted (removal.go): Options.Removals.
	removing *Removals
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

// New loads the recorded containers. It changes nothing: Recover settles
// what the daemon's last run left.
func New(opts Options, log *slog.Logger) (*Service, error) {
	s := &Service{opts: opts, log: log, names: map[string]string{},
		store: store.New(filepath.Join(opts.Root, "containers"), kind), removing: opts.Removals}
	if s.removing == nil {
		s.removing = NewRemovals()
	}
	if b, err := os.ReadFile("/proc/self/oom_score_adj"); err == nil {
		s.oomScoreAdjMin, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if opts.Host != nil {
		s.host = *opts.Host
	} else {
		s.host = spec.ProbeHost()
	}
	if err := s.store.Load(log); err != nil {
		return nil, err
	}
	for _, c := range s.store.List(nil) {
		s.names[c.nameKey()] = c.ID
	}
	return s, nil
}

// Recover settles, once at start-up before serving, what the daemon's
// last run left: it undoes the creations and finishes the removals that
// were cut short, reconciles the records of created and running containers
// with runc and conmon, and resumes watching the running ones for their
// exit (conmon's exit file holds an exit that happened while the daemon
// was down). The daemon runs it after the pods' Recover, as start-up
// always has.
func (s *Service) Recover(ctx context.Context) error {
	// A checkpoint's work files left by a crash.
	if err := os.RemoveAll(s.checkpointWorkDir()); err != nil {
		s.log.Warn("remove interrupted checkpoints", "err", err)
	}
	for _, c := range s.store.List(nil) {
		if c.State == creating || c.Removing {
			s.undoInterrupted(ctx, c)
			continue
		}
		if c.State == Created || c.State == Running {
			s.reconcile(ctx, c)
		}
	}
	// The exit watchers read and write the records: they start once all
	// are reconciled.
	for _, c := range s.store.List(func(c *Container) bool { return c.State == Running }) {
		safego.Go(s.log, "watch container exit", func() { s.watch(c.ID) })
	}
	return nil
}

func (s *Service) recordPath(id string) string { return s.store.Path(id) }

// lock serializes operations on one container.
func (s *Service) lock(id string) func() { return s.locks.Lock(id) }

// update is the only way a container's record changes (store.Update):
// change is applied to a copy, the transition checked against the
// container state machine, the copy persisted, and only then does it
// replace the live record. Nobody can observe a state (an exit, say) that
// a crash right after would lose.
func (s *Service) update(id string, change func(*Container) error) (*Container, error) {
	return s.store.Update(id, change)
}

// updateUnsaved is update for a side effect that already happened when its
// record may not be writable (a full disk): the change is published even
// if its record could not be written, which the error then says
// (store.ErrUnsaved). The record on disk stays behind until the next update
// of the container saves the whole of it, and start-up's reconcile works
// the same out from runc meanwhile.
func (s *Service) updateUnsaved(id string, change func(*Container) error) (*Container, error) {
	return s.store.UpdateUnsaved(id, change)
}

// Get returns a copy of the container with this ID or unique ID prefix,
// with an exit recorded by conmon but not yet seen applied.
func (s *Service) Get(id string) (*Container, error) {
	snapshot, err := s.store.Get(id)
	if err != nil {
		return nil, err
	}
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
	if c, err := s.store.Get(id); err == nil {
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
func (s *Service) reconcile(ctx context.Context, c *Container) {
	rt := s.runtimeOf(c)
	if _, exited := rt.Exited(c.ID); exited {
		// Get and the exit watcher record it. A record still saying
		// created belongs to a StartContainer whose record was never
		// written (a crash, a full disk): conmon's exit file says the
		// process ran, so it is running until the exit is applied.
		if c.State == Created {
			c.State = Running
			s.log.Info("found an exit of a container started by a StartContainer not recorded", "container", c.ID)
			s.reconciled(c)
		}
		return
	}
	st, err := rt.State(ctx, c.ID)
	if c.Restore != nil && c.State == Created {
		// Made from a checkpoint: runc knows it only once Start restored it.
		if err != nil || st.Status != "running" {
			return
		}
		c.State, c.StartedAt, c.Pid = Running, c.CreatedAt, st.Pid
		c.RestoredFrom, c.Restore = c.Restore, nil
		s.log.Info("found a container restored by an interrupted StartContainer", "container", c.ID)
		s.reconciled(c)
		return
	}
	if err == nil && st.Status == "paused" {
		// Only a pod checkpoint pauses containers, and it resumes them
		// before it returns: the daemon died in between. Thaw it.
		if err := rt.Resume(ctx, c.ID); err != nil {
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
		if err := rt.Delete(ctx, c.ID); err != nil {
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
	s.reconciled(c)
}

// reconciled records what reconcile found: c replaces the record, through
// the state machine like any change. What runc and conmon say already
// happened: it is shown even when the record cannot be written now.
func (s *Service) reconciled(c *Container) {
	if _, err := s.updateUnsaved(c.ID, func(live *Container) error { *live = *c; return nil }); err != nil {
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
func (s *Service) undoInterrupted(ctx context.Context, c *Container) {
	steps := []func() error{
		func() error { return s.runtimeOf(c).Delete(ctx, c.ID) },
		func() error { return s.opts.Images.RemoveWritableLayer(c.ID) },
		func() error { s.unmountImageVolumes(c.Mounts); return nil },
		func() error { return s.store.Delete(c.ID) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			// Not listed: the next start-up tries again.
			s.log.Warn("undo interrupted container", "container", c.ID, "err", err)
			s.store.Drop(c.ID)
			s.dropName(c)
			return
		}
	}
	s.dropName(c)
	s.log.Info("undid a container whose creation was interrupted", "container", c.ID, "pod", c.PodID, "name", c.Name)
}

// dropName frees c's name in its pod, if c holds it.
func (s *Service) dropName(c *Container) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.names[c.nameKey()] == c.ID {
		delete(s.names, c.nameKey())
	}
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
