package checkpoint

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Whiteouts as containers/storage writes a layer's diff (AUFS style): an
// empty file ".wh.<name>" says <name> was deleted, ".wh..wh..opq" in a
// directory that the directory replaced the image's.
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// SplitDiff turns a writable layer's diff (a tar with whiteouts, from
// containers/storage) into the archive's two members: the files the
// container added or changed, written as a tar to files, and the paths it
// deleted, returned absolute ("/tmp/x"), as deleted.files lists them. A
// directory that replaced the image's (deleted and made again) is listed
// as deleted too, and its new contents are in the tar: JoinDiff makes it
// opaque again.
func SplitDiff(diff io.Reader, files io.Writer) ([]string, error) {
	tr := tar.NewReader(diff)
	tw := tar.NewWriter(files)
	var deleted []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read the writable layer's diff: %w", err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "./"), "/")
		dir, base := path.Split(name)
		switch {
		case base == opaqueMarker:
			deleted = append(deleted, "/"+strings.TrimSuffix(dir, "/"))
			continue
		case strings.HasPrefix(base, whiteoutPrefix):
			deleted = append(deleted, "/"+dir+strings.TrimPrefix(base, whiteoutPrefix))
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return nil, err
		}
	}
	sort.Strings(deleted)
	return deleted, tw.Close()
}

// ParseDeleted reads deleted.files, checking every path is absolute,
// clean and not the root.
func ParseDeleted(data []byte) ([]string, error) {
	var paths []string
	if err := json.Unmarshal(data, &paths); err != nil {
		return nil, fmt.Errorf("%s: %v: %w", DeletedFilesFile, err, errdefs.ErrInvalidArgument)
	}
	for _, p := range paths {
		if !path.IsAbs(p) || path.Clean(p) != p || p == "/" || strings.Contains(p, "\x00") {
			return nil, fmt.Errorf("%s: %q is not a clean absolute path: %w", DeletedFilesFile, p, errdefs.ErrInvalidArgument)
		}
	}
	return paths, nil
}

// JoinDiff is SplitDiff's inverse: the layer diff (with whiteouts) that
// containers/storage applies to a new writable layer, made of the files
// tar (rootfs-diff.tar, read twice: it must be seekable) and the deleted
// paths. The files come first, so that the directories whiteouts go in
// have their own modes; a deleted path that the tar makes again as a
// directory becomes an opaque directory.
func JoinDiff(files io.ReadSeeker, deleted []string, out io.Writer) error {
	dirs := map[string]bool{}
	tr := tar.NewReader(files)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %v: %w", RootfsDiffFile, err, errdefs.ErrInvalidArgument)
		}
		if hdr.Typeflag == tar.TypeDir {
			dirs["/"+strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "./"), "/")] = true
		}
	}
	if _, err := files.Seek(0, io.SeekStart); err != nil {
		return err
	}
	tw := tar.NewWriter(out)
	tr = tar.NewReader(files)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %v: %w", RootfsDiffFile, err, errdefs.ErrInvalidArgument)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	for _, p := range deleted {
		name := path.Dir(p)[1:] + "/" + whiteoutPrefix + path.Base(p)
		if dirs[p] {
			name = p[1:] + "/" + opaqueMarker
		}
		name = strings.TrimPrefix(name, "/")
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o600}); err != nil {
			return err
		}
	}
	return tw.Close()
}

// ReadConfig decodes config.dump.
func ReadConfig(data []byte) (*Config, error) {
	var c Config
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %v: %w", ConfigDumpFile, err, errdefs.ErrInvalidArgument)
	}
	return &c, nil
}
