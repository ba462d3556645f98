package image

import (
	"fmt"
	"strings"

	"go.podman.io/image/v5/docker/reference"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// ID identifies an image by the digest of its configuration: the same bytes
// pulled under any name, from any registry, are one image with one ID.
// It holds the 64 hex digits; String adds the "sha256:" prefix the CRI shows.
type ID string

func (id ID) String() string { return "sha256:" + string(id) }

// Hex is the ID as containers/storage names it.
func (id ID) Hex() string { return string(id) }

const idLen = 64

// isHex reports whether s is non-empty lowercase hexadecimal.
func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// parseID accepts a full image ID, with or without its "sha256:" prefix.
func parseID(s string) (ID, bool) {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) == idLen && isHex(s) {
		return ID(s), true
	}
	return "", false
}

// idPrefix accepts a truncated image ID (at least 3 hex digits, optionally
// "sha256:"-prefixed), as crictl and docker users type them.
func idPrefix(s string) (string, bool) {
	s = strings.TrimPrefix(s, "sha256:")
	return s, len(s) >= 3 && len(s) < idLen && isHex(s)
}

// parseName checks that s is a valid image reference (short or qualified,
// with tag and/or digest) and returns it normalized, e.g. "busybox" as
// "docker.io/library/busybox". Malformed input is an InvalidArgument error.
func parseName(s string) (reference.Named, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %v: %w", s, err, errdefs.ErrInvalidArgument)
	}
	return named, nil
}

// repoTag and repoDigest are the two spellings the CRI reports for an
// image's names: "repo:tag" and "repo@sha256:...".
func repoTag(named reference.Named) (string, bool) {
	if _, digested := named.(reference.Digested); digested {
		return "", false
	}
	return reference.TagNameOnly(named).String(), true
}

// dropTagIfDigested turns "name:tag@digest" into "name@digest": the digest
// alone names the content, and registries (and containers/image) accept
// only one of the two. Anything else is returned unchanged.
func dropTagIfDigested(s string) string {
	ref, err := reference.Parse(s)
	if err != nil {
		return s
	}
	named, isNamed := ref.(reference.Named)
	_, tagged := ref.(reference.Tagged)
	digested, isDigested := ref.(reference.Digested)
	if !isNamed || !tagged || !isDigested {
		return s
	}
	return named.Name() + "@" + digested.Digest().String()
}
