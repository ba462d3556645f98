package daemon

import (
	"context"
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

	"github.com/cri-runtime/cri-runtime/pkg/apparmor"
	"github.com/cri-runtime/cri-runtime/pkg/cgroup"
	"github.com/cri-runtime/cri-runtime/pkg/config"
	"github.com/cri-runtime/cri-runtime/pkg/container"
	"github.com/cri-runtime/cri-runtime/pkg/cri"
	"github.com/cri-runtime/cri-runtime/pkg/events"
	"github.com/cri-runtime/cri-runtime/pkg/image"
	"github.com/cri-runtime/cri-runtime/pkg/metrics"
	"github.com/cri-runtime/cri-runtime/pkg/oci"
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

// serve runs the daemon until ctx is cancelled.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	// First: no child may inherit systemd's notify socket (notify.go).
	sd := newNotifier(log)
	driver, err := cgroup.DriverNamed(cfg.CgroupDriver)
	if err != nil {
		return err
	}
	if driver.IsSystemd() {
		if _, err := os.Stat("/run/systemd/system"); err != nil {
			return fmt.Errorf("cgroup_driver is systemd but systemd is not the init system (no /run/systemd/system)")
		}
	}
	for _, d := range []string{cfg.Root, cfg.State} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	// One daemon per root and per state directory: two would corrupt both.
	for _, d := range []string{cfg.Root, cfg.State} {
		unlock, err := lockDir(d)
		if err != nil {
			return err
		}
		defer unlock()
	}

	images, err := image.Open(image.Options{
		Root:            cfg.Root,
		State:           cfg.State,
		RegistriesConf:  cfg.Image.RegistriesConf,
		SignaturePolicy: cfg.Image.SignaturePolicy,
		StorageDriver:   cfg.Image.StorageDriver,
		StorageOptions:  cfg.Image.StorageOptions,
		ImageStore:      cfg.Image.ImageStore,
		Pinned:          cfg.Image.PinnedImages,
	}, log.With("component", "image"))
	if err != nil {
		return err
	}
	defer func() {
		if err := images.Close(); err != nil {
			log.Warn("close image store", "err", err)
		}
	}()

	programs := oci.NewProber(cfg.Runtime.Path, cfg.Runtime.MonitorPath)
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
	}, log.With("component", "cni"))
	if err != nil {
		return err
	}
	helperBin, err := helperBinary()
	if err != nil {
		return err
	}
	log.Info("helper for pod inits and execs", "path", helperBin)
	var lifecycle events.Broker
	sandboxes, err := sandbox.New(ctx, sandbox.Options{
		Events:       &lifecycle,
		PauseBinary:  helperBin,
		Root:         cfg.Root,
		State:        cfg.State,
		CgroupDriver: driver,
		Network:      network,
	}, log.With("component", "sandbox"))
	if err != nil {
		return err
	}

	// One OCI runtime per RuntimeClass handler, each with its own state.
	handlers := map[string]string{cfg.Runtime.DefaultHandler(): cfg.Runtime.Path}
	for name, h := range cfg.Runtime.Handlers {
		handlers[name] = h.Path
	}
	runtimes := map[string]container.Runtime{}
	var handlerNames []string
	features := map[string]oci.Features{}
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
			Helper:   helperBin,
			StateDir: stateDir,
			// Every handler's runc must manage cgroups the way the pods' are.
			SystemdCgroup: driver.IsSystemd(),
		}, log.With("component", "oci", "handler", name))
		if err != nil {
			return err
		}
		defer rt.Close()
		runtimes[name] = rt
		handlerNames = append(handlerNames, name)
		features[name] = oci.ProbeFeatures(ctx, lookPath(path), cfg.Root)
		if name == cfg.Runtime.DefaultHandler() {
			features[""] = features[name]
		}
		log.Info("runtime handler", "handler", name, "path", path, "features", features[name])
	}
	sort.Strings(handlerNames)
	controllers, err := cgroup.Controllers()
	if err != nil {
		log.Warn("cannot list the cgroup controllers: passing every limit to the OCI runtime", "err", err)
	}
	// AppArmor: load our RuntimeDefault profile now, so that a node whose
	// parser is missing or refuses it says so at start-up (containers that
	// ask for it then fail with the reason; see Status).
	var armor interface {
		container.AppArmor
		Status() map[string]any
	} // stays a nil interface on nodes without AppArmor
	if h := apparmor.NewHost(""); h != nil {
		armor = h
		if err := h.EnsureDefault(ctx); err != nil {
			log.Error("AppArmor is enabled but its default profile cannot be loaded: containers asking for RuntimeDefault will fail", "err", err)
		} else {
			log.Info("AppArmor default profile loaded", "profile", apparmor.DefaultProfile)
		}
	}
	// runc runs criu from PATH.
	criu := oci.NewCRIU("criu", log.With("component", "criu"))
	containers, err := container.New(container.Options{
		Root:           cfg.Root,
		CgroupDriver:   driver,
		Images:         images,
		Pods:           sandboxes,
		Runtimes:       runtimes,
		DefaultHandler: cfg.Runtime.DefaultHandler(),
		Events:         &lifecycle,
		Controllers:    controllers,
		AppArmor:       armor,
		CRIU:           criu,
		// Archives go where the caller says, never among our own files.
		ArchiveForbidden: []string{cfg.State},
	}, log.With("component", "container"))
	if err != nil {
		return err
	}
	sandboxes.SetContainers(containers)
	images.SetLayerRemovals(containers)
	podCheckpoints := podcheckpoint.New(podcheckpoint.Options{
		Pods: sandboxes, Containers: containers, CRIU: criu, DefaultHandler: cfg.Runtime.DefaultHandler(),
	}, log.With("component", "podcheckpoint"))

	// Report readiness once at start-up; Status re-checks on every call.
	if p, err := programs.Probe(ctx); err != nil {
		log.Warn("runtime is not ready", "err", err)
	} else {
		log.Info("runtime ready", "runtime", p.Runtime.Path, "runtime_version", p.Runtime.Version, "monitor", p.Monitor.Path, "monitor_version", p.Monitor.Version)
	}
	_, _ = network.Network(ctx) // logs what it found

	streams, err := streaming.New(streaming.Options{
		Address:     net.JoinHostPort(cfg.Streaming.Address, strconv.Itoa(cfg.Streaming.Port)),
		TLSCert:     cfg.Streaming.TLSCert,
		TLSKey:      cfg.Streaming.TLSKey,
		TLSClientCA: cfg.Streaming.TLSClientCA,
		IdleTimeout: cfg.StreamingIdleTimeout(),
		Containers:  containers,
		Pods:        sandboxes,
	}, log.With("component", "streaming"))
	if err != nil {
		return err
	}
	go func() {
		defer safego.Recover(log, "streaming server")
		if err := streams.Serve(); err != nil {
			log.Error("streaming server stopped", "err", err)
		}
	}()
	defer streams.Close()

	stats := metrics.New()
	if cfg.Metrics.Address != "" {
		ms, err := stats.Listen(cfg.Metrics.Address, log)
		if err != nil {
			return fmt.Errorf("metrics.address: %w", err)
		}
		go func() {
			defer safego.Recover(log, "metrics server")
			if err := ms.Serve(); err != nil {
				log.Error("metrics server stopped", "err", err)
			}
		}()
		defer ms.Close()
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

	srv := cri.NewServer(cri.Options{
		Logger:          log,
		Programs:        programs,
		Network:         network,
		Images:          images,
		Sandboxes:       sandboxes,
		Containers:      containers,
		Events:          &lifecycle,
		Streams:         streams,
		Metrics:         stats,
		ImageFs:         images,
		Checkpoint:      criu,
		PodCheckpoints:  podCheckpoints,
		CgroupDriver:    cfg.CgroupDriver,
		Handlers:        handlerNames,
		HandlerFeatures: features,
		AppArmor:        armor,
		DiskReserve:     diskReserve,
		Config:          cfg,
	})
	lis, err := cri.Listen(cfg.Listen)
	if err != nil {
		return err
	}
	log.Info("cri-runtime serving", "version", version.String(), "socket", cfg.Listen, "streaming", streams.Addr(), "root", cfg.Root, "state", cfg.State)

	served := make(chan error, 1)
	safego.Go(log, "CRI server", func() { served <- srv.Serve(lis) })
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
	safego.Go(log, "CRI graceful stop", func() { srv.GracefulStop(); close(stopped) })
	select {
	case <-stopped:
	case <-time.After(shutdownGrace):
		log.Warn("in-flight RPCs did not finish in time; closing them")
		srv.Stop()
	}
	// Container removals still deleting layers in the background finish
	// before the store closes (a restart would finish them otherwise).
	wctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	if err := containers.WaitLayerRemovals(wctx); err != nil {
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
