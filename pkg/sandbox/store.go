package sandbox

import (
	"github.com/cri-runtime/cri-runtime/pkg/store"
)

// removing is no State a record holds but the lifecycle state of a pod
// marked Removing (lifecycle): RemovePodSandbox began taking it away.
const removing State = "removing"

// transitions is the pods' state machine, over lifecycle states:
//
//	(new) → creating    the write-ahead record of a RunPodSandbox
//	(new) → Ready       RunPodSandbox done (the record said creating)
//	Ready → NotReady    StopPodSandbox, or start-up finding the
//	                    namespaces gone
//	NotReady → removing RemovePodSandbox's write-ahead mark (it stops the
//	                    pod first)
//
// A creating or removing record is finished by start-up (Recover).
var transitions = store.Transitions[State]{
	"":       {creating, Ready},
	Ready:    {NotReady},
	NotReady: {removing},
}

// lifecycle is sb's state in the transitions table: its State, or removing
// once RemovePodSandbox marked it.
func lifecycle(sb *Sandbox) State {
	if sb.Removing {
		return removing
	}
	return sb.State
}

// kind describes pod records to the store: <root>/sandboxes/<id>/sandbox.json.
var kind = store.Kind[Sandbox, State]{
	Name:        "pod sandbox",
	File:        "sandbox.json",
	ID:          func(sb *Sandbox) string { return sb.ID },
	State:       lifecycle,
	Clone:       (*Sandbox).clone,
	Transitions: transitions,
}
