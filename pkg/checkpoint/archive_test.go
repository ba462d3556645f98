package checkpoint

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func tarOf(t *testing.T, hdrs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
	}
	tw.Close()
	return buf.Bytes()
}

func names(t *testing.T, data []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h.Name)
	}
}

// TestDiffRoundTrip: whiteouts become deleted.files and back; a directory
// deleted and made again comes back opaque, after its own entry.
func TestDiffRoundTrip(t *testing.T) {
	diff := tarOf(t,
		&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "etc/.wh.group", Typeflag: tar.TypeReg},
		&tar.Header{Name: "var/cache/", Typeflag: tar.TypeDir, Mode: 0o700},
		&tar.Header{Name: "var/cache/.wh..wh..opq", Typeflag: tar.TypeReg},
		&tar.Header{Name: "var/cache/new", Typeflag: tar.TypeReg, Size: 3, Mode: 0o644},
	)
	var files bytes.Buffer
	deleted, err := SplitDiff(bytes.NewReader(diff), &files)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(deleted, []string{"/etc/group", "/var/cache"}) {
		t.Fatalf("deleted = %v", deleted)
	}
	if got := names(t, files.Bytes()); !slices.Equal(got, []string{"etc/", "var/cache/", "var/cache/new"}) {
		t.Fatalf("files = %v", got)
	}
	var joined bytes.Buffer
	if err := JoinDiff(bytes.NewReader(files.Bytes()), deleted, &joined); err != nil {
		t.Fatal(err)
	}
	want := []string{"etc/", "var/cache/", "var/cache/new", "etc/.wh.group", "var/cache/.wh..wh..opq"}
	if got := names(t, joined.Bytes()); !slices.Equal(got, want) {
		t.Fatalf("joined = %v; want %v", got, want)
	}
}

func TestParseDeleted(t *testing.T) {
	for _, bad := range []string{`["etc/x"]`, `["/"]`, `["/a/../b"]`, `{}`} {
		if _, err := ParseDeleted([]byte(bad)); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseDeleted(%s) = %v; want InvalidArgument", bad, err)
		}
	}
}

// TestExtract: files and directories only, never outside the directory.
func TestExtract(t *testing.T) {
	good := tarOf(t,
		&tar.Header{Name: "checkpoint/", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "checkpoint/inventory.img", Typeflag: tar.TypeReg, Size: 4, Mode: 0o644},
		&tar.Header{Name: "./config.dump", Typeflag: tar.TypeReg, Size: 2, Mode: 0o644},
	)
	dir := t.TempDir()
	if err := Extract(bytes.NewReader(good), dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "checkpoint", "inventory.img")); err != nil {
		t.Fatal(err)
	}
	m, err := ReadMembers(bytes.NewReader(good), ConfigDumpFile)
	if err != nil || string(m[ConfigDumpFile]) != "xx" {
		t.Fatalf("ReadMembers = %q, %v", m, err)
	}
	if _, err := ReadMembers(bytes.NewReader(good), SpecDumpFile); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("ReadMembers of a missing member = %v; want InvalidArgument", err)
	}
	outside := t.TempDir()
	for name, hdr := range map[string]*tar.Header{
		"dot-dot":  {Name: "../" + filepath.Base(outside) + "/x", Typeflag: tar.TypeReg, Size: 1},
		"absolute": {Name: outside + "/x", Typeflag: tar.TypeReg, Size: 1},
		"symlink":  {Name: "link", Typeflag: tar.TypeSymlink, Linkname: outside},
		"hardlink": {Name: "hard", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"},
		"device":   {Name: "dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 1},
	} {
		t.Run(name, func(t *testing.T) {
			if err := Extract(bytes.NewReader(tarOf(t, hdr)), t.TempDir()); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("Extract = %v; want InvalidArgument", err)
			}
			if entries, _ := os.ReadDir(outside); len(entries) != 0 {
				t.Fatalf("written outside: %v", entries)
			}
		})
	}
}

// TestWrite: what Write makes, Extract takes back.
func TestWrite(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "checkpoint"), 0o700)
	os.WriteFile(filepath.Join(src, "checkpoint", "pages-1.img"), []byte("mem"), 0o600)
	os.WriteFile(filepath.Join(src, "spec.dump"), []byte("{}"), 0o600)
	var buf bytes.Buffer
	if err := Write(&buf, src); err != nil {
		t.Fatal(err)
	}
	if got := names(t, buf.Bytes()); !slices.Equal(got, []string{"checkpoint/", "checkpoint/pages-1.img", "spec.dump"}) {
		t.Fatalf("members = %v", got)
	}
	dst := t.TempDir()
	if err := Extract(&buf, dst); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "checkpoint", "pages-1.img")); string(b) != "mem" {
		t.Fatalf("extracted %q", b)
	}
	os.Symlink("/etc", filepath.Join(src, "link"))
	if err := Write(io.Discard, src); err == nil {
		t.Fatal("Write took a symlink")
	}
}
