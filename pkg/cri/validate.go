package cri

import (
	"fmt"
	"math"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// validateRequest checks the fields api.proto makes mandatory, so that every
// handler can rely on them and the client learns which field was missing.
// Deeper checks (a field's value against the state of the node) stay in the
// domain packages.
func validateRequest(req any) error {
	var (
		field string
		msg   = "is required"
	)
	switch r := req.(type) {
	case *runtimeapi.RunPodSandboxRequest:
		field = missingMetadata("config", r.GetConfig() == nil, r.GetConfig().GetMetadata() == nil,
			r.GetConfig().GetMetadata().GetName(), r.GetConfig().GetMetadata().GetNamespace(), r.GetConfig().GetMetadata().GetUid())
	case *runtimeapi.CreateContainerRequest:
		switch {
		case r.GetPodSandboxId() == "":
			field = "pod_sandbox_id"
		case r.GetConfig() == nil:
			field = "config"
		case r.GetConfig().GetMetadata() == nil:
			field = "config.metadata"
		case r.GetConfig().GetMetadata().GetName() == "":
			field = "config.metadata.name"
		case r.GetConfig().GetImage().GetImage() == "":
			field = "config.image.image"
		case r.GetSandboxConfig() == nil:
			field = "sandbox_config"
		}
	case interface{ GetPodSandboxId() string }:
		// Stop/Remove/Status/Stats/UpdateResources/PortForward/CheckpointPod.
		// ListPodSandboxStats and friends carry the ID inside a filter and do
		// not match this interface.
		if r.GetPodSandboxId() == "" {
			field = "pod_sandbox_id"
		}
	case *runtimeapi.ExecSyncRequest:
		field = firstMissing("container_id", r.GetContainerId(), "cmd", len(r.GetCmd()))
	case *runtimeapi.ExecRequest:
		field = firstMissing("container_id", r.GetContainerId(), "cmd", len(r.GetCmd()))
		if field == "" {
			field, msg = streamFlags(r.GetTty(), r.GetStdin(), r.GetStdout(), r.GetStderr())
		}
	case *runtimeapi.AttachRequest:
		field = firstMissing("container_id", r.GetContainerId())
		if field == "" {
			field, msg = streamFlags(r.GetTty(), r.GetStdin(), r.GetStdout(), r.GetStderr())
		}
	case interface{ GetContainerId() string }:
		// Start/Stop/Remove/Status/UpdateResources/ReopenLog/Stats/Checkpoint.
		if r.GetContainerId() == "" {
			field = "container_id"
		}
	case interface{ GetImage() *runtimeapi.ImageSpec }:
		// PullImage, ImageStatus, RemoveImage.
		if r.GetImage().GetImage() == "" {
			field = "image.image"
		}
	case *runtimeapi.UpdateRuntimeConfigRequest:
		if r.GetRuntimeConfig() == nil {
			field = "runtime_config"
		}
	case *runtimeapi.RestorePodRequest:
		field = firstMissing("checkpoint_path", r.GetCheckpointPath())
	}
	if field == "" {
		return nil
	}
	return fmt.Errorf("%s %s: %w", field, msg, errdefs.ErrInvalidArgument)
}

// missingMetadata names the first absent part of a config.metadata block.
func missingMetadata(prefix string, noConfig, noMeta bool, name, namespace, uid string) string {
	switch {
	case noConfig:
		return prefix
	case noMeta:
		return prefix + ".metadata"
	}
	return firstMissing(prefix+".metadata.name", name, prefix+".metadata.namespace", namespace, prefix+".metadata.uid", uid)
}

// firstMissing takes (name, value) pairs, values being strings or lengths, and
// returns the name of the first empty one.
func firstMissing(pairs ...any) string {
	for i := 0; i+1 < len(pairs); i += 2 {
		switch v := pairs[i+1].(type) {
		case string:
			if v == "" {
				return pairs[i].(string)
			}
		case int:
			if v == 0 {
				return pairs[i].(string)
			}
		}
	}
	return ""
}

// streamFlags applies the api.proto rules shared by Exec and Attach: at least
// one stream, and no separate stderr with a tty.
func streamFlags(tty, stdin, stdout, stderr bool) (string, string) {
	switch {
	case !stdin && !stdout && !stderr:
		return "stdin, stdout or stderr", "must be requested (one of them at least)"
	case tty && stderr:
		return "stderr", "must be false when tty is true (a terminal merges it into stdout)"
	}
	return "", ""
}

// seconds converts a request's timeout in seconds, saturating instead of
// overflowing: a timeout of centuries must not wrap around to a negative
// duration, which StopContainer would take as "kill at once". Negative
// timeouts count as zero.
func seconds(n int64) time.Duration {
	const most = int64(math.MaxInt64 / time.Second)
	switch {
	case n <= 0:
		return 0
	case n > most:
		return time.Duration(most) * time.Second
	}
	return time.Duration(n) * time.Second
}
