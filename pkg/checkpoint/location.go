package checkpoint

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// FileLocation checks where a container's checkpoint archive may be
// written: an absolute, clean path of a regular file (or of nothing yet)
// in an existing directory outside the runtime's own directories
// (forbidden). It returns the path with its directory's symlinks resolved.
// Anything else is InvalidArgument.
func FileLocation(loc string, forbidden []string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("checkpoint location %q: %s: %w", loc, why, errdefs.ErrInvalidArgument)
	}
	if why := notAbsClean(loc); why != "" {
		return bad(why)
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(loc))
	if err != nil {
		return bad("its directory does not exist")
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return bad("its parent is not a directory")
	}
	if own := inside(dir, forbidden); own != "" {
		return bad("it is inside the runtime's own directory " + own)
	}
	full := filepath.Join(dir, filepath.Base(loc))
	if fi, err := os.Lstat(full); err == nil && !fi.Mode().IsRegular() {
		return bad("it exists and is not a regular file")
	}
	return full, nil
}

// DirLocation checks a directory a pod checkpoint is written to (empty
// set) or read from: absolute, clean, an existing directory outside the
// runtime's own directories, and, when empty is set, with nothing in it
// (api.proto: "an existing, empty directory"). It returns the path with
// its symlinks resolved. Anything else is InvalidArgument.
func DirLocation(loc string, forbidden []string, empty bool) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("checkpoint directory %q: %s: %w", loc, why, errdefs.ErrInvalidArgument)
	}
	if why := notAbsClean(loc); why != "" {
		return bad(why)
	}
	dir, err := filepath.EvalSymlinks(loc)
	if err != nil {
		return bad("it does not exist")
	}
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return bad("it is not a directory")
	}
	if own := inside(dir, forbidden); own != "" {
		return bad("it is inside the runtime's own directory " + own)
	}
	if empty {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return bad(err.Error())
		}
		if len(entries) > 0 {
			return bad("it is not empty")
		}
	}
	return dir, nil
}

// notAbsClean says why loc is not an absolute, clean path ("" when it is).
func notAbsClean(loc string) string {
	switch {
	case loc == "":
		return "a location is required"
	case !filepath.IsAbs(loc):
		return "must be an absolute path"
	case filepath.Clean(loc) != loc || strings.HasSuffix(loc, "/") && loc != "/":
		return "must be a clean path"
	}
	return ""
}

// inside is the first of the forbidden directories that dir is in or is
// ("" when none).
func inside(dir string, forbidden []string) string {
	for _, own := range forbidden {
		if own == "" {
			continue
		}
		if r, err := filepath.EvalSymlinks(own); err == nil {
			own = r
		}
		if rel, err := filepath.Rel(own, dir); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return own
		}
	}
	return ""
}
