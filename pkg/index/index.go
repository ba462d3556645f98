// Package index finds the daemon's objects (pods, containers) the way the
// CRI names them: by a new random ID, by a full ID or a unique prefix of
// one, and by label selectors.
package index

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// NewID returns a fresh 64-hex-digit object ID.
func NewID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Find returns the object whose ID is id, else the only one whose ID starts
// with id. kind names the objects in errors ("container", "pod sandbox"):
// none is NotFound, several are InvalidArgument.
func Find[T any](objects map[string]T, id, kind string) (T, error) {
	if obj, ok := objects[id]; ok {
		return obj, nil
	}
	var (
		found T
		hits  int
	)
	if id != "" {
		for key, obj := range objects {
			if strings.HasPrefix(key, id) {
				found = obj
				hits++
			}
		}
	}
	switch hits {
	case 1:
		return found, nil
	case 0:
		return found, fmt.Errorf("%s %s: %w", kind, id, errdefs.ErrNotFound)
	}
	var zero T
	return zero, fmt.Errorf("%s ID prefix %s is ambiguous: %w", kind, id, errdefs.ErrInvalidArgument)
}

// LabelsMatch reports whether every wanted label is present with the
// wanted value (an empty value matches only a label set to "", not a
// missing one).
func LabelsMatch(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}
