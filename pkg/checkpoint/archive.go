// Package checkpoint is the layout of a container checkpoint archive: a
// plain tar holding CRIU's images and what a runtime needs to bring the
// container back. It follows the layout CRI-O and Podman write (and
// checkpointctl reads):
//
//	checkpoint/       CRIU's images (runc checkpoint --image-path)
//	config.dump       the container's metadata (Config)
//	spec.dump         the OCI spec it ran with
//	rootfs-diff.tar   files its writable layer added or changed
//	deleted.files     JSON list of the image's files it deleted
//	container.log     its log up to the checkpoint
//	dump.log          CRIU's log of the dump
//	stats-dump        CRIU's statistics of the dump
//
// The package only reads and writes files; running CRIU is pkg/oci's.
package checkpoint

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// Names of the archive's members.
const (
	ImagesDir        = "checkpoint"
	ConfigDumpFile   = "config.dump"
	SpecDumpFile     = "spec.dump"
	RootfsDiffFile   = "rootfs-diff.tar"
	DeletedFilesFile = "deleted.files"
	ContainerLog     = "container.log"
	DumpLogFile      = "dump.log"
	StatsDumpFile    = "stats-dump"
)

// Config is config.dump. The first fields are those checkpointctl and
// CRI-O read (Podman's names); the rest are ours, for a restore.
type Config struct {
	ID              string    `json:"id"`
	Name            string    `json:"name"`
	RootfsImage     string    `json:"rootfsImage,omitempty"`     // image ID
	RootfsImageRef  string    `json:"rootfsImageRef,omitempty"`  // image ID, as CRI-O resolves it
	RootfsImageName string    `json:"rootfsImageName,omitempty"` // the image as the container asked for it
	OCIRuntime      string    `json:"runtime,omitempty"`
	CreatedTime     time.Time `json:"createdTime"`
	CheckpointedAt  time.Time `json:"checkpointedTime"`

	PodID      string            `json:"podID,omitempty"`
	Attempt    uint32            `json:"attempt,omitempty"`
	StopSignal string            `json:"stopSignal,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	// Annotations are the container's (the request's), not the spec's.
	Annotations map[string]string `json:"annotations,omitempty"`
	// Mounts are the container paths of the request's mounts (host paths
	// and image volumes): a restore must be given each again.
	Mounts []string `json:"mounts,omitempty"`
}

// maxMember bounds one member of an archive being read: CRIU's page images
// are as big as the container's memory, so the bound is generous.
const maxMember = 64 << 30

// Write puts every regular file and directory under dir into a tar at w,
// with names relative to dir. Anything else (a symlink, a device) is an
// error: nothing in a checkpoint's work directory should be one.
func Write(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() && !fi.IsDir() {
			return fmt.Errorf("checkpoint archive: %s is neither a file nor a directory", rel)
		}
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.IsDir() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// Extract unpacks the archive at r into dir, which must exist and be
// empty, taking only regular files and directories with plain relative
// names: a name with "..", an absolute name, a link or a device makes the
// archive invalid (InvalidArgument), and nothing is written outside dir.
func Extract(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read checkpoint archive: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		name, err := memberName(hdr.Name)
		if err != nil {
			return err
		}
		if name == "" {
			continue // "./"
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if hdr.Size > maxMember {
				return fmt.Errorf("checkpoint archive member %s is %d bytes: %w", name, hdr.Size, errdefs.ErrInvalidArgument)
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
				return err
			}
			// Parents were made here, never followed from the archive: a
			// member cannot be a link, so O_EXCL|O_NOFOLLOW only guards
			// against a name given twice.
			f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
			if err != nil {
				return fmt.Errorf("checkpoint archive member %s: %v: %w", name, err, errdefs.ErrInvalidArgument)
			}
			_, err = io.Copy(f, io.LimitReader(tr, hdr.Size))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("extract %s: %w", name, err)
			}
		default:
			return fmt.Errorf("checkpoint archive member %s is not a file or directory (type %q): %w", name, hdr.Typeflag, errdefs.ErrInvalidArgument)
		}
	}
}

// memberName cleans an archive member's name; names that leave the
// archive's root are InvalidArgument.
func memberName(raw string) (string, error) {
	n := strings.TrimPrefix(raw, "./")
	n = strings.TrimSuffix(n, "/")
	if n == "" || n == "." {
		return "", nil
	}
	if path.IsAbs(n) || path.Clean(n) != n || n == ".." || strings.HasPrefix(n, "../") || strings.Contains(n, "\x00") {
		return "", fmt.Errorf("checkpoint archive member %q: not a plain relative name: %w", raw, errdefs.ErrInvalidArgument)
	}
	return n, nil
}

// maxMetadata bounds the small members ReadMembers reads into memory.
const maxMetadata = 16 << 20

// ReadMembers reads the named small members (config.dump, spec.dump) of
// the archive at r, without unpacking the rest. A missing member is
// InvalidArgument: the file is not a checkpoint archive.
func ReadMembers(r io.Reader, names ...string) (map[string][]byte, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string][]byte{}
	tr := tar.NewReader(r)
	for len(out) < len(want) {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not a checkpoint archive: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		name, err := memberName(hdr.Name)
		if err != nil {
			return nil, err
		}
		if !want[name] || hdr.Typeflag != tar.TypeReg {
			continue
		}
		if hdr.Size > maxMetadata {
			return nil, fmt.Errorf("checkpoint archive member %s is %d bytes: %w", name, hdr.Size, errdefs.ErrInvalidArgument)
		}
		data, err := io.ReadAll(io.LimitReader(tr, hdr.Size))
		if err != nil {
			return nil, fmt.Errorf("read checkpoint archive member %s: %v: %w", name, err, errdefs.ErrInvalidArgument)
		}
		out[name] = data
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("not a checkpoint archive: no %s in it: %w", n, errdefs.ErrInvalidArgument)
		}
	}
	return out, nil
}

// ImageAnnotation marks an OCI image built from a checkpoint archive: its
// layer holds the archive's files at its root. The name is the one
// checkpointctl defines and CRI-O, Podman and buildah-made images carry, in
// the manifest's annotations (or, from some builders, the config's labels).
const ImageAnnotation = "org.criu.checkpoint.container.name"

// IsCheckpointImage says whether an image with these manifest annotations
// and config labels is a checkpoint image.
func IsCheckpointImage(annotations, labels map[string]string) bool {
	_, a := annotations[ImageAnnotation]
	_, l := labels[ImageAnnotation]
	return a || l
}
