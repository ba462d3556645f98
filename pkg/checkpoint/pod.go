package checkpoint

import (
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// A pod checkpoint (CheckpointPod) is one plain tar, PodArchiveFile, in
// the directory the caller names:
//
//	pod.dump                 the pod and its containers (PodConfig)
//	containers/<id>.tar      each container's checkpoint archive, in the
//	                         layout above (checkpointctl reads each one,
//	                         and CreateContainer restores each one)
//
// All containers were dumped while all were frozen: one cut of the pod.
const (
	PodArchiveFile = "pod-checkpoint.tar"
	PodDumpFile    = "pod.dump"
	ContainersDir  = "containers"
)

// PodConfig is pod.dump.
type PodConfig struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	Namespace      string    `json:"namespace"`
	UID            string    `json:"uid"`
	RuntimeHandler string    `json:"runtimeHandler"` // resolved: never ""
	CheckpointedAt time.Time `json:"checkpointedTime"`
	// Config is the pod's configuration (the runtime's, sandbox.Config).
	Config     json.RawMessage `json:"config"`
	Containers []PodContainer  `json:"containers"`
}

// PodContainer is one container of a pod checkpoint.
type PodContainer struct {
	Name string `json:"name"` // its CRI metadata name
	ID   string `json:"id"`
}

// Member is the container's archive in the pod's.
func (c PodContainer) Member() string { return ContainersDir + "/" + c.ID + ".tar" }

var containerID = regexp.MustCompile(`^[0-9a-f]{1,64}$`)

// ReadPodConfig decodes pod.dump, checking what a restore relies on:
// containers with distinct names and IDs that are plain member names.
func ReadPodConfig(data []byte) (*PodConfig, error) {
	var p PodConfig
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("%s: %v: %w", PodDumpFile, err, errdefs.ErrInvalidArgument)
	}
	if len(p.Containers) == 0 {
		return nil, fmt.Errorf("%s lists no containers: %w", PodDumpFile, errdefs.ErrInvalidArgument)
	}
	names, ids := map[string]bool{}, map[string]bool{}
	for _, c := range p.Containers {
		if c.Name == "" || names[c.Name] || !containerID.MatchString(c.ID) || ids[c.ID] {
			return nil, fmt.Errorf("%s: container %q (%q) is unnamed, repeated or has no valid ID: %w", PodDumpFile, c.Name, c.ID, errdefs.ErrInvalidArgument)
		}
		names[c.Name], ids[c.ID] = true, true
	}
	return &p, nil
}
