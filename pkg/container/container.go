// Package container runs a pod's containers: each is an image's layers plus
// its own writable layer, an OCI spec built from the request, the image and
// the pod, run by runc under its own conmon. The package keeps each
// container's record and state machine:
//
//	Created --Start--> Running --(process exits, Stop)--> Exited --Remove--> gone
//
// A container made from a checkpoint archive is Created with no process
// until Start, which restores the checkpointed processes (restore.go).
//
// Records live in a store.Store: every change goes through Service.update,
// which persists the record under --root before anyone can observe the new
// state, and checks it against the one table of allowed transitions,
// transitions below.
package container

import (
	"fmt"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cri-runtime/cri-runtime/pkg/image"
	"github.com/cri-runtime/cri-runtime/pkg/store"
)

// State is a container's lifecycle state.
type State string

const (
	Created State = "created"
	Running State = "running"
	Exited  State = "exited"
	// creating is only ever seen in a record: CreateContainer was cut
	// short and start-up must undo what it did.
	creating State = "creating"
	// removing is no State a record holds but the lifecycle state of one
	// marked Removing (lifecycle): RemoveContainer began taking it away.
	removing State = "removing"
)

// transitions is the containers' state machine, over lifecycle states:
//
//	(new) → creating  the write-ahead record of a CreateContainer
//	(new) → Created   CreateContainer done (the record said creating)
//	Created → Running  StartContainer, or start-up finding it started
//	Created → Exited   start-up finding its process lost (reconcile)
//	Running → Exited   its exit, recorded by the watcher, Get or Stop
//	Created, Exited → removing  RemoveContainer's write-ahead mark
//
// A creating or removing record is finished by start-up (undoInterrupted).
var transitions = store.Transitions[State]{
	"":      {creating, Created},
	Created: {Running, Exited, removing},
	Running: {Exited},
	Exited:  {removing},
}

// lifecycle is c's state in the transitions table: its State, or removing
// once RemoveContainer marked it.
func lifecycle(c *Container) State {
	if c.Removing {
		return removing
	}
	return c.State
}

// kind describes container records to the store.
var kind = store.Kind[Container, State]{
	Name:        "container",
	File:        "container.json",
	ID:          func(c *Container) string { return c.ID },
	State:       lifecycle,
	Clone:       (*Container).clone,
	Transitions: transitions,
}

// Container is a container's record. Values handed out are copies.
type Container struct {
	ID      string `json:"id"`
	PodID   string `json:"podID"`
	Name    string `json:"name"`
	Attempt uint32 `json:"attempt"`

	// Handler is the RuntimeClass handler (OCI runtime) it runs with.
	Handler string `json:"handler,omitempty"`

	Image   string `json:"image"`   // as requested
	ImageID string `json:"imageID"` // "sha256:..."

	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	LogPath     string            `json:"logPath,omitempty"` // absolute; "" when the pod has no log directory
	StopSignal  string            `json:"stopSignal"`
	// Stdin: conmon keeps a pipe to the process's stdin for attach;
	// StdinOnce: it is closed when the first attached client detaches.
	Stdin     bool    `json:"stdin,omitempty"`
	StdinOnce bool    `json:"stdinOnce,omitempty"`
	Mounts    []Mount `json:"mounts,omitempty"`
	// CgroupPath is the container's cgroup in cgroupfs form, for stats.
	CgroupPath string `json:"cgroupPath,omitempty"`

	State      State     `json:"state"`
	CreatedAt  time.Time `json:"createdAt"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	Pid        int       `json:"pid,omitempty"`
	ExitCode   int       `json:"exitCode"`
	Reason     string    `json:"reason,omitempty"`
	Message    string    `json:"message,omitempty"`

	// Deferred: the container is created but "runc create" has not run
	// yet; Start runs it from Spec. Records written before creation was
	// deferred lack it: their runc container exists.
	Deferred bool `json:"deferred,omitempty"`

	// Removing is set before RemoveContainer takes anything away; a
	// start-up finds such a container half-removed and finishes the job.
	Removing bool `json:"removing,omitempty"`

	// Restore: made from a checkpoint archive, restored by Start.
	// RestoredFrom: the checkpoint it was restored from.
	Restore      *Restore `json:"restore,omitempty"`
	RestoredFrom *Restore `json:"restoredFrom,omitempty"`

	Spec *specs.Spec `json:"spec,omitempty"` // what runc ran
}

// Mount is a host path mounted into the container, as status reports it.
type Mount struct {
	ContainerPath     string      `json:"containerPath"`
	HostPath          string      `json:"hostPath"`
	Readonly          bool        `json:"readonly,omitempty"`
	RecursiveReadOnly bool        `json:"recursiveReadOnly,omitempty"`
	Propagation       Propagation `json:"propagation,omitempty"`
	// An image volume: the image as requested, the one mounted (released
	// when the container goes) and the directory of it mounted.
	Image        string   `json:"image,omitempty"`
	ImageID      image.ID `json:"imageID,omitempty"`
	ImageSubPath string   `json:"imageSubPath,omitempty"`
}

func (c *Container) clone() *Container {
	cp := *c
	cp.Mounts = append([]Mount(nil), c.Mounts...)
	return &cp
}

func (c *Container) nameKey() string { return nameKey(c.PodID, c.Name, c.Attempt) }

func nameKey(pod, name string, attempt uint32) string {
	return fmt.Sprintf("%s\x00%s\x00%d", pod, name, attempt)
}
