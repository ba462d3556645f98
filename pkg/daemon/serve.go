package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"google.golang.org/grpc"

	"github.com/cri-runtime/cri-runtime/pkg/apparmor"
	"github.com/cri-runtime/cri-runtime/pkg/cgroup"
	"github.com/cri-runtime/cri-runtime/pkg/config"
	"github.com/cri-runtime/cri-runtime/pkg/container"
	"github.com/cri-runtime/cri-runtime/pkg/cri"
	"github.com/cri-runtime/cri-runtime/pkg/events"
	"github.com/cri-runtime/cri-runtime/pkg/image"
	"github.com/cri-runtime/cri-runtime/pkg/metrics"
	"github.com/cri-runtime/cri-runtime/pkg/oci"
	"github.com/cri-runtime/cri-runtime/pkg/oci/spec"
	"github.com/cri-runtime/cri-runtime/pkg/pod"
	"github.com/cri-runtime/cri-runtime/pkg/podcheckpoint"
	"github.com/cri-runtime/cri-runtime/pkg/reserve"
	"github.com/cri-runtime/cri-runtime/pkg/safego"
	"github.com/cri-runtime/cri-runtime/pkg/sandbox"
	"github.com/cri-runtime/cri-runtime/pkg/sandbox/cni"
	"github.com/cri-runtime/cri-runtime/pkg/streaming"
	"github.com/cri-runtime/cri-runtime/pkg/version"
)

// shutdownGrace bounds how long in-flight RPCs may run after SIGTERM.
const shutdownGrace = 10 * time.Second

// serve runs the daemon until ctx is cancelled: it builds the daemon in
// named steps, each keeping what it made in a wiring, then serves the CRI
// until ctx ends and closes everything in the reverse order.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	// First: no child may inherit systemd's notify socket (notify.go).
	sd := newNotifier(log)
	w := &wiring{cfg: cfg, log: log}
	defer w.close()
	for _, step := range []func(context.Context) error{
		w.prepareHost,
		w.openStores,
		w.buildRuntimes,
		w.openNetwork,
		w.buildServices,
		w.startServers,
	} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return w.run(ctx, sd)
}

// appArmorHost is the node's AppArmor as the services and Status use it.
type appArmorHost interface {
	container.AppArmor
	Status() map[string]any
}

// wiring is the daemon being built: what each step of serve made, for the
// steps after it.
type wiring struct {
	cfg *config.Config
	log *slog.Logger
	// closers undo the steps, run last first by close.
	closers []func()

	// prepareHost
	driver    cgroup.Driver
	helperBin string
	// openStores
	images *image.Service
	// buildRuntimes
	programs     *oci.Prober
	runtimes     map[string]container.Runtime
	handlerNames []string
	features     map[string]container.RuntimeFeatures
	criu         *oci.CRIU
	// openNetwork
	network *cni.Manager
	// buildServices
	lifecycle      events.Broker
	sandboxes      *sandbox.Manager
	containers     *container.Service
	removals       *container.Removals
	pods           *pod.Coordinator
	podCheckpoints *podcheckpoint.Service
	armor          appArmorHost // stays a nil interface on nodes without AppArmor
	// startServers
	streams *streaming.Server
	srv     *grpc.Server
	lis     net.Listener
}

// onClose adds an undo step.
func (w *wiring) onClose(f func()) { w.closers = append(w.closers, f) }

// close undoes the steps, last first.
func (w *wiring) close() {
	for i := len(w.closers) - 1; i >= 0; i-- {
		w.closers[i]()
	}
}

// prepareHost checks the cgroup driver against the init system, makes the
// root and state directories and locks them (one daemon per directory: two
// would corrupt both), and finds the helper binary.
func (w *wiring) prepareHost(context.Context) error {
	cfg := w.cfg
	driver, err := cgroup.DriverNamed(cfg.CgroupDriver)
	if err != nil {
		return err
	}
	if driver.IsSystemd() {
		if _, err := os.Stat("/run/systemd/system"); err != nil {
			return fmt.Errorf("cgroup_driver is systemd but systemd is not the init system (no /run/systemd/system)")
		}
	}
	w.driver = driver
	for _, d := range []string{cfg.Root, cfg.State} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	for _, d := range []string{cfg.Root, cfg.State} {
		unlock, err := lockDir(d)
		if err != nil {
			return err
		}
		w.onClose(unlock)
	}
	if w.helperBin, err = helperBinary(); err != nil {
		return err
	}
	w.log.Info("helper for pod inits and execs", "path", w.helperBin)
	return nil
}

// openStores opens the image store.
func (w *wiring) openStores(context.Context) error {
	cfg := w.cfg
	// Container removals finish in the background; an image's removal
	// waits for them (container.Removals), so both services get this one.
	w.removals = container.NewRemovals()
	images, err := image.Open(image.Options{
		LayerRemovals:   w.removals,
		Root:            cfg.Root,
		State:           cfg.State,
		RegistriesConf:  cfg.Image.RegistriesConf,
		SignaturePolicy: cfg.Image.SignaturePolicy,
		StorageDriver:   cfg.Image.StorageDriver,
		StorageOptions:  cfg.Image.StorageOptions,
		ImageStore:      cfg.Image.ImageStore,
		Pinned:          cfg.Image.PinnedImages,
	}, w.log.With("component", "image"))
	if err != nil {
		return err
	}
	w.images = images
	w.onClose(func() {
		if err := images.Close(); err != nil {
			w.log.Warn("close image store", "err", err)
		}
	})
	return nil
}

// buildRuntimes makes one OCI runtime per RuntimeClass handler, each with
// its own state, and probes their features, the programs and CRIU.
func (w *wiring) buildRuntimes(ctx context.Context) error {
	cfg, log := w.cfg, w.log
	w.programs = oci.NewProber(cfg.Runtime.Path, cfg.Runtime.MonitorPath)
	handlers := map[string]string{cfg.Runtime.DefaultHandler(): cfg.Runtime.Path}
	for name, h := range cfg.Runtime.Handlers {
		handlers[name] = h.Path
	}
	w.runtimes = map[string]container.Runtime{}
	w.features = map[string]container.RuntimeFeatures{}
	for name, path := range handlers {
		stateDir := filepath.Join(cfg.State, "oci")
		if name != cfg.Runtime.DefaultHandler() {
			stateDir = filepath.Join(cfg.State, "oci-"+name)
			if _, err := exec.LookPath(path); err != nil {
				log.Warn("runtime handler's binary not found; its pods will fail", "handler", name, "path", path)
			}
		}
		rt, err := oci.NewRuntime(oci.RuntimeOptions{
			Runc:     lookPath(path),
			Conmon:   lookPath(cfg.Runtime.MonitorPath),
			Helper:   w.helperBin,
			StateDir: stateDir,
			// Every handler's runc must manage cgroups the way the pods' are.
			SystemdCgroup: w.driver.IsSystemd(),
		}, log.With("component", "oci", "handler", name))
		if err != nil {
			return err
		}
		w.onClose(func() { rt.Close() })
		w.runtimes[name] = rt
		w.handlerNames = append(w.handlerNames, name)
		w.features[name] = oci.ProbeFeatures(ctx, lookPath(path), cfg.Root)
		if name == cfg.Runtime.DefaultHandler() {
			w.features[""] = w.features[name]
		}
		log.Info("runtime handler", "handler", name, "path", path, "features", w.features[name])
	}
	sort.Strings(w.handlerNames)
	// runc runs criu from PATH.
	w.criu = oci.NewCRIU("criu", log.With("component", "criu"))
	return nil
}

// openNetwork loads the pod network: the CNI configuration, or the
// built-in network when there is none.
func (w *wiring) openNetwork(context.Context) error {
	cfg := w.cfg
	network, err := cni.New(cni.Options{
		ConfDir:     cfg.Network.ConfDir,
		BinDirs:     cfg.Network.BinDirs,
		CacheDir:    filepath.Join(cfg.Root, "cni", "cache"),
		PodCIDRFile: filepath.Join(cfg.Root, "cni", "pod-cidr.json"),
		Builtin: cni.Builtin{
			Name:    "cri-runtime",
			Bridge:  cfg.Network.DefaultBridge,
			Subnet:  cfg.Network.DefaultSubnet,
			DataDir: filepath.Join(cfg.Root, "cni", "networks"),
		},
	}, w.log.With("component", "cni"))
	if err != nil {
		return err
	}
	w.network = network
	return nil
}

// buildServices makes the domain services (pods, containers, pod
// checkpoints), which recover their records, and reports readiness once.
func (w *wiring) buildServices(ctx context.Context) error {
	cfg, log := w.cfg, w.log
	sandboxes, err := sandbox.New(sandbox.Options{
		Events:       &w.lifecycle,
		PauseBinary:  w.helperBin,
		Root:         cfg.Root,
		State:        cfg.State,
		CgroupDriver: w.driver,
		Network:      w.network,
	}, log.With("component", "sandbox"))
	if err != nil {
		return err
	}
	w.sandboxes = sandboxes
	controllers, err := cgroup.Controllers()
	if err != nil {
		log.Warn("cannot list the cgroup controllers: passing every limit to the OCI runtime", "err", err)
	}
	// AppArmor: load our RuntimeDefault profile now, so that a node whose
	// parser is missing or refuses it says so at start-up (containers that
	// ask for it then fail with the reason; see Status).
	if h := apparmor.NewHost(""); h != nil {
		w.armor = h
		if err := h.EnsureDefault(ctx); err != nil {
			log.Error("AppArmor is enabled but its default profile cannot be loaded: containers asking for RuntimeDefault will fail", "err", err)
		} else {
			log.Info("AppArmor default profile loaded", "profile", apparmor.DefaultProfile)
		}
	}
	// The node's facts the spec builder needs, read once.
	host := spec.ProbeHost()
	// Container creations and starts are admitted through the pod's gate,
	// which the pod coordinator closes while it stops or removes the pod.
	admission := pod.NewGate(sandboxes)
	containers, err := container.New(container.Options{
		Root:           cfg.Root,
		CgroupDriver:   w.driver,
		Images:         w.images,
		Pods:           admission,
		Runtimes:       w.runtimes,
		DefaultHandler: cfg.Runtime.DefaultHandler(),
		Events:         &w.lifecycle,
		Controllers:    controllers,
		AppArmor:       w.armor,
		Host:           &host,
		CRIU:           w.criu,
		// Archives go where the caller says, never among our own files.
		ArchiveForbidden: []string{cfg.State},
		Removals:         w.removals,
	}, log.With("component", "container"))
	if err != nil {
		return err
	}
	w.containers = containers
	w.pods = pod.New(pod.Options{Pods: sandboxes, Containers: containers, Gate: admission})
	// What the last run left, before anything is served: pods, then
	// containers (pod.Coordinator.Recover).
	if err := w.pods.Recover(ctx); err != nil {
		return err
	}
	w.podCheckpoints = podcheckpoint.New(podcheckpoint.Options{
		Pods: sandboxes, PodRemover: w.pods, Gate: admission, Containers: containers, CRIU: w.criu, DefaultHandler: cfg.Runtime.DefaultHandler(),
	}, log.With("component", "podcheckpoint"))

	// Report readiness once at start-up; Status re-checks on every call.
	if p, err := w.programs.Probe(ctx); err != nil {
		log.Warn("runtime is not ready", "err", err)
	} else {
		log.Info("runtime ready", "runtime", p.Runtime.Path, "runtime_version", p.Runtime.Version, "monitor", p.Monitor.Path, "monitor_version", p.Monitor.Version)
	}
	_, _ = w.network.Network(ctx) // logs what it found
	return nil
}

// startServers starts the streaming and metrics servers, takes the disk
// reserve, and makes the CRI server and its socket.
func (w *wiring) startServers(ctx context.Context) error {
	cfg, log := w.cfg, w.log
	streams, err := streaming.New(streaming.Options{
		Address:     net.JoinHostPort(cfg.Streaming.Address, strconv.Itoa(cfg.Streaming.Port)),
		TLSCert:     cfg.Streaming.TLSCert,
		TLSKey:      cfg.Streaming.TLSKey,
		TLSClientCA: cfg.Streaming.TLSClientCA,
		IdleTimeout: cfg.StreamingIdleTimeout(),
		Containers:  w.containers,
		Pods:        w.sandboxes,
	}, log.With("component", "streaming"))
	if err != nil {
		return err
	}
	w.streams = streams
	go func() {
		defer safego.Recover(log, "streaming server")
		if err := streams.Serve(); err != nil {
			log.Error("streaming server stopped", "err", err)
		}
	}()
	w.onClose(func() { streams.Close() })

	stats := metrics.New()
	if cfg.Metrics.Address != "" {
		ms, err := stats.Listen(cfg.Metrics.Address, log)
		if err != nil {
			return fmt.Errorf("metrics.address: %w", err)
		}
		if cfg.Metrics.Profiling {
			ms.ServeProfiles()
			log.Info("serving Go runtime profiles", "address", "http://"+ms.Addr()+"/debug/pprof/")
		}
		go func() {
			defer safego.Recover(log, "metrics server")
			if err := ms.Serve(); err != nil {
				log.Error("metrics server stopped", "err", err)
			}
		}()
		w.onClose(func() { ms.Close() })
		log.Info("serving metrics", "address", "http://"+ms.Addr()+"/metrics")
	}

	// A few megabytes under the root that the calls freeing space may
	// take when the disk is full (pkg/reserve).
	diskReserve, err := reserve.New(cfg.Root, "disk-reserve", reserve.Size)
	if err != nil {
		return err
	}
	if !diskReserve.Held() {
		log.Warn("no room under the root for the disk reserve: on a full disk, removals may fail until space returns", "root", cfg.Root)
	}
	safego.Go(log, "disk reserve", func() { diskReserve.KeepRestoring(ctx, 5*time.Second) })

	// The configuration does not change: Status shows it encoded once.
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encode the configuration: %w", err)
	}
	w.srv = cri.NewServer(cri.Options{
		Logger:          log,
		Programs:        w.programs,
		Network:         w.network,
		Images:          w.images,
		Sandboxes:       w.sandboxes,
		Pods:            w.pods,
		Containers:      w.containers,
		Events:          &w.lifecycle,
		Streams:         streams,
		Metrics:         stats,
		ImageFs:         w.images,
		Checkpoint:      w.criu,
		PodCheckpoints:  w.podCheckpoints,
		CgroupDriver:    cfg.CgroupDriver,
		Handlers:        w.handlerNames,
		HandlerFeatures: w.features,
		AppArmor:        w.armor,
		DiskReserve:     diskReserve,
		Config:          cfgJSON,
	})
	if w.lis, err = cri.Listen(cfg.Listen); err != nil {
		return err
	}
	return nil
}

// run serves the CRI until ctx ends, telling systemd when it is ready and
// stopping; in-flight RPCs get shutdownGrace to finish.
func (w *wiring) run(ctx context.Context, sd *notifier) error {
	cfg, log := w.cfg, w.log
	log.Info("cri-runtime serving", "version", version.String(), "socket", cfg.Listen, "streaming", w.streams.Addr(), "root", cfg.Root, "state", cfg.State)

	served := make(chan error, 1)
	safego.Go(log, "CRI server", func() { served <- w.srv.Serve(w.lis) })
	// The socket accepts from here on: tell systemd (notify.go).
	sd.notify(sddaemon.SdNotifyReady)
	stopWatchdog := sd.startWatchdog(ctx)
	defer stopWatchdog()
	select {
	case err := <-served:
		return fmt.Errorf("serve CRI: %w", err)
	case <-ctx.Done():
	}

	sd.notify(sddaemon.SdNotifyStopping)
	log.Info("shutting down", "grace", shutdownGrace)
	stopped := make(chan struct{})
	safego.Go(log, "CRI graceful stop", func() { w.srv.GracefulStop(); close(stopped) })
	select {
	case <-stopped:
	case <-time.After(shutdownGrace):
		log.Warn("in-flight RPCs did not finish in time; closing them")
		w.srv.Stop()
	}
	// Container removals still deleting layers in the background finish
	// before the store closes (a restart would finish them otherwise).
	wctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	if err := w.removals.WaitLayerRemovals(wctx); err != nil {
		log.Warn("container removals left to the next start", "err", err)
	}
	cancel()
	if err := os.Remove(cfg.Listen); err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Warn("remove socket", "err", err)
	}
	log.Info("stopped")
	return nil
}

// lockDir takes an exclusive, non-blocking flock on dir/daemon.lock and
// returns its release. The kernel drops the lock if we die, so a crash never
// leaves the directory locked.
func lockDir(dir string) (func(), error) {
	path := filepath.Join(dir, "daemon.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is in use by another cri-runtime (lock %s is held)", dir, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// lookPath resolves a configured program name; when it cannot be found the
// name is kept, and RuntimeReady reports the problem.
func lookPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return name
}

// helperName is the helper's binary (cmd/cri-runtime-helper), installed
// next to the daemon's.
const helperName = "cri-runtime-helper"

// helperBinary is the program pods' inits and execs run: cri-runtime-helper
// next to our own binary, which starts faster and holds far less memory
// than the daemon's binary, else our own binary (which has the same
// commands).
func helperBinary() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find our own binary: %w", err)
	}
	h := filepath.Join(filepath.Dir(self), helperName)
	if fi, err := os.Stat(h); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
		return h, nil
	}
	return self, nil
}
