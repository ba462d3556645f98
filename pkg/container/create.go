package container

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cri-runtime/cri-runtime/pkg/cleanup"
	"github.com/cri-runtime/cri-runtime/pkg/crashpoint"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/events"
	"github.com/cri-runtime/cri-runtime/pkg/image"
	"github.com/cri-runtime/cri-runtime/pkg/index"
	"github.com/cri-runtime/cri-runtime/pkg/oci/spec"
	"github.com/cri-runtime/cri-runtime/pkg/sandbox"
)

// CreateRequest is a container as a client (the CRI adapter, a pod
// restore) asks for it, in the container's own terms; Create completes it
// with the pod's, the image's and the host's parts and builds the OCI spec.
type CreateRequest struct {
	PodID       string
	Name        string
	Attempt     uint32
	Image       string
	Labels      map[string]string
	Annotations map[string]string // also the spec's annotations
	LogPath     string            // relative to the pod's log directory
	StopSignal  string            // "" = the image's, else SIGTERM
	PIDMode     NamespaceMode
	PIDFromPod  bool   // no mode was asked for: use the pod's
	TargetID    string // the container whose PID namespace NamespaceTarget joins
	// Command replaces the image's entrypoint and Args its command
	// (Kubernetes semantics); Env is "K=V" each.
	Command, Args []string
	Env           []string
	WorkingDir    string
	TTY           bool
	Stdin         bool
	StdinOnce     bool
	// Mounts are host paths bound into the container (the image-volume
	// fields of Mount are unused here: those come in ImageVolumes).
	Mounts    []Mount
	Devices   []Device
	Resources Resources
	Security  Security
	// ImageVolumes are mounted read-only besides Mounts.
	ImageVolumes []ImageVolume
	// Checkpoint, when set, is the path of a container checkpoint archive
	// to restore (RestorePod). Unlike an Image that is an archive's path
	// (CreateContainer, as CRI-O), the request then describes the
	// checkpointed process: its image, command, arguments, directory,
	// environment and user must match the checkpoint's where given.
	Checkpoint string
}

// createTimeout bounds one CreateContainer's work, which goes on after its
// client gives up so that the kubelet's retry receives the container.
const createTimeout = 4 * time.Minute

// Create makes a container: its writable layer and its OCI spec; the runc
// container under conmon is made by Start. The work is not tied to
// the client: when it gives up (the kubelet's deadline passed), a retry
// with the same pod, name and attempt waits for the work, or receives the
// container it made, instead of failing with "name in use". A genuine
// duplicate, once the first client has its container, is AlreadyExists.
func (s *Service) Create(ctx context.Context, req CreateRequest) (*Container, error) {
	if err := checkRequest(req); err != nil {
		return nil, err
	}
	pod, err := s.opts.Pods.Get(req.PodID)
	if err != nil {
		return nil, err
	}
	req.PodID = pod.ID
	key := nameKey(pod.ID, req.Name, req.Attempt)
	taken := func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.nameInUse(key, req)
	}
	id, err := s.handover.Do(ctx, key, createTimeout, taken, func(ctx context.Context) (string, error) {
		c, err := s.create(ctx, req)
		if err != nil {
			return "", err
		}
		return c.ID, nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("create container %q in pod %s: %w (it is still being created; a retry will receive it)", req.Name, pod.ID, err)
		}
		return nil, err
	}
	return s.Get(id)
}

// nameInUse is AlreadyExists naming the container that holds the request's
// name and attempt in its pod, if one does. Callers hold s.mu.
func (s *Service) nameInUse(key string, req CreateRequest) error {
	if holder, taken := s.names[key]; taken {
		return fmt.Errorf("container name %q (attempt %d) is in use in pod %s by container %s: %w", req.Name, req.Attempt, req.PodID, holder, errdefs.ErrAlreadyExists)
	}
	return nil
}

// create does the work of Create. Every step is undone when a later one
// fails.
func (s *Service) create(ctx context.Context, req CreateRequest) (_ *Container, retErr error) {
	// Until the container is registered, the pod is neither stopped nor
	// removed: a RemovePodSandbox then removes it, or comes first and this
	// fails; never a container left in a half-removed pod.
	release, err := s.opts.Pods.Admit(req.PodID)
	if err != nil {
		return nil, err
	}
	defer release()
	pod, err := s.opts.Pods.Get(req.PodID)
	if err != nil {
		return nil, err
	}
	// An absolute path to a file is a checkpoint archive to restore; so is
	// a checkpoint image (made into an archive here).
	var restore *restorePlan
	source := req.Image
	if req.Checkpoint == "" && !isCheckpointArchive(req.Image) {
		archive, removeArchive, err := s.checkpointImageArchive(ctx, req.Image)
		if err != nil {
			return nil, err
		}
		if archive != "" {
			defer removeArchive()
			req.Image = archive
		}
	}
	if req.Checkpoint != "" || isCheckpointArchive(req.Image) {
		if restore, err = s.planRestore(ctx, &req); err != nil {
			return nil, err
		}
		if req.Checkpoint == "" {
			restore.source = source
		}
	}
	img, err := s.opts.Images.Status(ctx, req.Image)
	if err != nil {
		if restore != nil && errors.Is(err, errdefs.ErrNotFound) {
			return nil, restore.imageMissing(err)
		}
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil, fmt.Errorf("image %q is not present: pull it first: %w", req.Image, errdefs.ErrNotFound)
		}
		return nil, err
	}
	handler := pod.Config.RuntimeHandler
	if handler == "" {
		handler = s.opts.DefaultHandler
	}
	if _, ok := s.opts.Runtimes[handler]; !ok {
		return nil, fmt.Errorf("runtime handler %q of pod %s is not configured: %w", handler, pod.ID, errdefs.ErrFailedPrecondition)
	}
	logPath, err := containerLogPath(pod.Config.LogDirectory, req.LogPath)
	if err != nil {
		return nil, err
	}
	stopSignal, err := spec.StopSignal(req.StopSignal, img.Config.Config.StopSignal)
	if err != nil {
		return nil, err
	}
	imageVolumes, err := s.resolveImageVolumes(ctx, req.ImageVolumes)
	if err != nil {
		return nil, err
	}

	// Reserve the name in the pod.
	id := index.NewID()
	key := nameKey(pod.ID, req.Name, req.Attempt)
	s.mu.Lock()
	if err := s.nameInUse(key, req); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	s.names[key] = id
	s.mu.Unlock()
	undo := cleanup.New(s.log, "roll back a failed CreateContainer", "container", id)
	defer undo.OnError(ctx, &retErr)
	undo.Push("release the name", func(context.Context) error {
		s.mu.Lock()
		delete(s.names, key)
		s.mu.Unlock()
		return nil
	})

	// Write-ahead: a record in state "creating" before any side effect, so
	// that after a crash the start-up pass removes the half-made container
	// (its writable layer, its runc state) instead of leaking it.
	undo.Push("delete the record", func(context.Context) error { return s.store.Delete(id) })
	// The image volumes are in it, so that their mounts are released too.
	if err := s.store.WriteAhead(&Container{ID: id, PodID: pod.ID, Name: req.Name, Attempt: req.Attempt,
		Handler: handler, Image: req.Image, State: creating, CreatedAt: time.Now(), Mounts: imageVolumes}); err != nil {
		return nil, err
	}
	crashpoint.Hit("ctr-create:record")

	var mappings *image.IDMappings // the pod's user namespace, if it has one
	if u := pod.Config.UserNS; u != nil {
		mappings = &image.IDMappings{UIDs: specMaps(u.UIDs), GIDs: specMaps(u.GIDs)}
	}
	layer, err := s.opts.Images.CreateWritableLayer(id, pod.ID[:12]+"-"+req.Name+"-"+id[:12], img.ID, mappings)
	if err != nil {
		return nil, err
	}
	undo.Push("remove the writable layer", func(context.Context) error { return s.opts.Images.RemoveWritableLayer(id) })
	crashpoint.Hit("ctr-create:layer")
	var restored *Restore
	if restore != nil {
		// Removed with the record directory on failure.
		if restored, err = s.unpackRestore(restore, id, filepath.Join(filepath.Dir(s.recordPath(id)), "restore")); err != nil {
			return nil, err
		}
	}

	volMounts, err := s.mountImageVolumes(imageVolumes)
	if err != nil {
		return nil, err
	}
	undo.Push("unmount the image volumes", func(context.Context) error { s.unmountImageVolumes(imageVolumes); return nil })
	in, err := s.specInput(req, pod, img, id, layer.Rootfs)
	if err != nil {
		return nil, err
	}
	in.Mounts = append(in.Mounts, volMounts...)
	if aa := s.opts.AppArmor; aa != nil {
		in.AppArmor = aa
		if in.Security.AppArmor.Type == spec.RuntimeDefault && !in.Security.Privileged {
			if err := aa.EnsureDefault(ctx); err != nil {
				return nil, fmt.Errorf("AppArmor profile for RuntimeDefault: %v: %w", err, errdefs.ErrFailedPrecondition)
			}
		}
	}
	ociSpec, err := spec.Build(in)
	if err != nil {
		return nil, err
	}
	if restore != nil {
		// Start restores the checkpoint (conmon runs "runc restore").
		applyRestoredProcess(ociSpec, restore)
	}
	// "runc create" (under conmon) is left to StartContainer, as containerd
	// does: the kubelet starts what it creates at once, and a container that
	// is never started then costs no monitor and no runc state. The spec is
	// in the record, which Start runs from.
	crashpoint.Hit("ctr-create:runc")

	_, cgroupPath := s.opts.CgroupDriver.ContainerCgroup(pod.CgroupParent, id)
	c := &Container{
		ID: id, PodID: pod.ID, Name: req.Name, Attempt: req.Attempt, Handler: handler,
		Image: req.Image, ImageID: img.ID.String(),
		Labels: req.Labels, Annotations: req.Annotations, LogPath: logPath, StopSignal: stopSignal,
		Stdin: req.Stdin, StdinOnce: req.StdinOnce,
		State: Created, CreatedAt: time.Now(), Deferred: restore == nil, Spec: ociSpec,
		CgroupPath: cgroupPath,
		Restore:    restored,
	}
	if restore != nil {
		c.Image = restore.imageName
	}
	for _, m := range req.Mounts {
		c.Mounts = append(c.Mounts, Mount{ContainerPath: m.ContainerPath, HostPath: m.HostPath, Readonly: m.Readonly,
			RecursiveReadOnly: m.RecursiveReadOnly, Propagation: m.Propagation})
	}
	c.Mounts = append(c.Mounts, imageVolumes...)
	if err := s.store.Create(c); err != nil {
		return nil, err
	}
	s.opts.Events.Publish(events.Event{Type: events.Created, ContainerID: id, PodID: pod.ID})
	s.log.Info("container created", "container", id, "pod", pod.ID, "name", req.Name, "image", req.Image)
	return c.clone(), nil
}

// monitorPlacer moves a container's conmon out of the daemon's cgroup into
// its pod's (cgroup.Driver.PlaceMonitor).
func (s *Service) monitorPlacer(podCgroup, id string) func(pid int) error {
	return func(pid int) error { return s.opts.CgroupDriver.PlaceMonitor(podCgroup, id, pid) }
}

// specInput completes the request's part of the spec with the image's, the
// pod's and the host's.
func (s *Service) specInput(req CreateRequest, pod *sandbox.Sandbox, img *image.Image, id, rootfs string) (spec.Input, error) {
	in := requestInput(req)
	in.ID, in.Rootfs = id, rootfs
	cfg := img.Config.Config
	in.Image = spec.ImageConfig{Entrypoint: cfg.Entrypoint, Cmd: cfg.Cmd, Env: cfg.Env, WorkingDir: cfg.WorkingDir, User: cfg.User, StopSignal: cfg.StopSignal}
	in.OOMScoreAdjMin = s.oomScoreAdjMin
	in.Host = s.host
	in.HostsPath, in.HostnamePath, in.ResolvConfPath, in.ShmPath = pod.HostsPath(), pod.HostnamePath(), pod.ResolvConfPath(), pod.ShmPath()
	in.Hostname = ""
	if hn, err := readTrim(pod.HostnamePath()); err == nil && !pod.Config.HostNetwork {
		in.Hostname = hn
	}
	podNS := func(kind string, host bool) spec.Namespace {
		if host {
			return spec.Namespace{Mode: spec.Node}
		}
		return spec.Namespace{Mode: spec.Pod, Path: pod.Namespaces[kind]}
	}
	if u := pod.Config.UserNS; u != nil {
		in.UserNS = &spec.UserNamespace{Path: pod.UserNSPath(), UIDs: specMaps(u.UIDs), GIDs: specMaps(u.GIDs)}
	}
	in.Network = podNS("net", pod.Config.HostNetwork)
	in.UTS = podNS("uts", pod.Config.HostNetwork)
	in.IPC = podNS("ipc", pod.Config.HostIPC)
	mode := req.PIDMode
	if req.PIDFromPod {
		switch pod.Config.PIDMode {
		case sandbox.PIDPod:
			mode = NamespacePod
		case sandbox.PIDHost:
			mode = NamespaceNode
		default:
			mode = NamespaceContainer
		}
	}
	switch specPIDMode(mode) {
	case spec.Node:
		in.PID = spec.Namespace{Mode: spec.Node}
	case spec.Pod:
		if pod.PIDNSPath() == "" {
			return in, fmt.Errorf("pid namespace POD: pod %s does not share one: %w", pod.ID, errdefs.ErrInvalidArgument)
		}
		in.PID = spec.Namespace{Mode: spec.Pod, Path: pod.PIDNSPath()}
	case spec.Target:
		target, err := s.Get(req.TargetID)
		if err != nil || target.PodID != pod.ID || target.State != Running {
			return in, fmt.Errorf("pid namespace TARGET %q: not a running container of this pod: %w", req.TargetID, errdefs.ErrInvalidArgument)
		}
		in.PID = spec.Namespace{Mode: spec.Target, Path: fmt.Sprintf("/proc/%d/ns/pid", target.Pid)}
	default:
		in.PID = spec.Namespace{Mode: spec.Container}
	}
	in.CgroupsPath, _ = s.opts.CgroupDriver.ContainerCgroup(pod.CgroupParent, id)
	in.Controllers = s.opts.Controllers
	s.warnMissingControllers(in.Resources)
	return in, nil
}

// containerLogPath joins the pod's log directory and the container's log
// path, refusing a path that leaves the directory.
func containerLogPath(dir, rel string) (string, error) {
	if dir == "" || rel == "" {
		return "", nil
	}
	if filepath.IsAbs(rel) {
		return "", fmt.Errorf("log_path %q must be relative to the pod's log directory: %w", rel, errdefs.ErrInvalidArgument)
	}
	full := filepath.Join(dir, rel)
	if r, err := filepath.Rel(dir, full); err != nil || r == "." {
		return "", fmt.Errorf("log_path %q names the pod's log directory, not a file in it: %w", rel, errdefs.ErrInvalidArgument)
	} else if r == ".." || strings.HasPrefix(r, "../") {
		return "", fmt.Errorf("log_path %q escapes the pod's log directory: %w", rel, errdefs.ErrInvalidArgument)
	}
	return full, nil
}

// specMaps converts a pod's user namespace mappings to the OCI spec's, which
// both the container's spec and its writable layer take.
func specMaps(in []sandbox.IDMap) []specs.LinuxIDMapping {
	out := make([]specs.LinuxIDMapping, 0, len(in))
	for _, m := range in {
		out = append(out, specs.LinuxIDMapping{ContainerID: m.ContainerID, HostID: m.HostID, Size: m.Size})
	}
	return out
}
