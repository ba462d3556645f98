// Package pod is the pod as a whole: the operations that span a pod
// sandbox (pkg/sandbox) and its containers (pkg/container), in the order
// they need. Stopping a pod stops its containers before its network goes;
// removing one removes its containers before the pod's own resources; and
// neither interleaves with a container being created or started in the
// pod (Gate). Neither service knows the other: the sandbox manager deals
// with the pod's namespaces, network and files only, the container service
// with containers only.
package pod

import (
	"context"
	"errors"
	"fmt"

	"github.com/cri-runtime/cri-runtime/pkg/crashpoint"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/sandbox"
)

// Pods is what the Coordinator needs of the pod service (sandbox.Manager):
// its Stop and Remove deal with the pod's own resources only.
type Pods interface {
	Get(id string) (*sandbox.Sandbox, error)
	// Stop detaches the pod's network and marks it not ready.
	Stop(ctx context.Context, id string) error
	// Remove stops the pod if needed and deletes everything it has; its
	// containers must be gone.
	Remove(ctx context.Context, id string) error
	// Recover settles what the daemon's last run left of the pods.
	Recover(ctx context.Context) error
}

// Containers is what the Coordinator needs of the container service
// (container.Service).
type Containers interface {
	// StopPodContainers kills the pod's running containers.
	StopPodContainers(ctx context.Context, podID string) error
	// RemovePodContainers removes all of the pod's containers.
	RemovePodContainers(ctx context.Context, podID string) error
	// Recover settles what the daemon's last run left of the containers.
	Recover(ctx context.Context) error
}

var _ Pods = (*sandbox.Manager)(nil)

// Options configure a Coordinator.
type Options struct {
	Pods       Pods
	Containers Containers
	// Gate is the admission lock the container service admits creations
	// and starts through (NewGate on the same pods).
	Gate *Gate
}

// Coordinator stops and removes pods with their containers. Safe for
// concurrent use: operations on one pod are serialized by its gate (and
// exclude container creations and starts in it while they run); different
// pods proceed in parallel.
type Coordinator struct {
	opts Options
}

// New returns a Coordinator over the two services. The services log what
// they do; the Coordinator only orders it.
func New(opts Options) *Coordinator { return &Coordinator{opts: opts} }

// Recover settles, once at start-up before serving, what the daemon's last
// run left: the pods first (a pod whose removal was cut short is finished,
// one whose namespaces went with a reboot is marked NotReady), then the
// containers (interrupted creations and removals undone, the rest
// reconciled with runc and conmon and watched for their exit). Neither
// needs the other's recovery done today (a pod's interrupted removal began
// only once its containers were gone); pods first is the order start-up
// has always had, and the one place to change it if that changes.
func (c *Coordinator) Recover(ctx context.Context) error {
	if err := c.opts.Pods.Recover(ctx); err != nil {
		return fmt.Errorf("recover pods: %w", err)
	}
	if err := c.opts.Containers.Recover(ctx); err != nil {
		return fmt.Errorf("recover containers: %w", err)
	}
	return nil
}

// lockPod finds pod id (an ID or unique prefix) and holds its gate
// exclusively. found is false, and nothing is held, when the pod is not
// there (or went while the gate was awaited).
func (c *Coordinator) lockPod(id string) (fullID string, unlock func(), found bool, err error) {
	sb, err := c.opts.Pods.Get(id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return "", nil, false, nil
	}
	if err != nil {
		return "", nil, false, err
	}
	unlock = c.opts.Gate.exclude(sb.ID)
	if _, err := c.opts.Pods.Get(sb.ID); err != nil {
		// A removal that held the gate before us took it away.
		unlock()
		if errors.Is(err, errdefs.ErrNotFound) {
			c.opts.Gate.forget(sb.ID)
			return "", nil, false, nil
		}
		return "", nil, false, err
	}
	return sb.ID, unlock, true, nil
}

// Stop stops the pod's containers, then detaches its network and marks it
// NotReady. When a container cannot be stopped the pod stays as it was
// (Ready), so that the kubelet's retry does it all again. Stopping a
// stopped or unknown pod succeeds: the CRI makes Stop idempotent.
func (c *Coordinator) Stop(ctx context.Context, id string) error {
	id, unlock, found, err := c.lockPod(id)
	if err != nil || !found {
		return err
	}
	defer unlock()
	return c.stopLocked(ctx, id)
}

func (c *Coordinator) stopLocked(ctx context.Context, id string) error {
	if err := c.opts.Containers.StopPodContainers(ctx, id); err != nil {
		return fmt.Errorf("stop containers of pod %s: %w", id, err)
	}
	crashpoint.Hit("pod-stop:containers")
	return c.opts.Pods.Stop(ctx, id)
}

// Remove stops the pod if needed, removes its containers, then everything
// the pod itself had. A failure at any step leaves the rest for the retry.
// Removing an unknown pod succeeds (api.proto: "returns success if the
// sandbox has already been removed").
func (c *Coordinator) Remove(ctx context.Context, id string) error {
	id, unlock, found, err := c.lockPod(id)
	if err != nil || !found {
		return err
	}
	defer unlock()
	if err := c.stopLocked(ctx, id); err != nil {
		return err
	}
	if err := c.opts.Containers.RemovePodContainers(ctx, id); err != nil {
		return fmt.Errorf("remove containers of pod %s: %w", id, err)
	}
	if err := c.opts.Pods.Remove(ctx, id); err != nil {
		return err
	}
	// Still held: those waiting for it find the pod gone once they have it.
	c.opts.Gate.forget(id)
	return nil
}
