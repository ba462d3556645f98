package checkpoint

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func TestLocations(t *testing.T) {
	own := t.TempDir()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	full := filepath.Join(dir, "full")
	for _, d := range []string{empty, full} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(own, filepath.Join(dir, "own-link")); err != nil {
		t.Fatal(err)
	}
	// A sibling whose name starts like the forbidden one is not inside it.
	sibling := own + "..x"
	if err := os.Mkdir(sibling, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sibling) })
	forbidden := []string{own}

	for _, tc := range []struct {
		loc string
		ok  bool
	}{
		{dir + "/cp.tar", true},
		{full + "/x", true}, // an existing file is replaced
		{sibling + "/cp.tar", true},
		{"", false},
		{"cp.tar", false},
		{dir + "/../cp.tar", false},
		{dir + "/nope/cp.tar", false},
		{empty, false}, // a directory
		{own + "/cp.tar", false},
		{dir + "/own-link/cp.tar", false},
	} {
		_, err := FileLocation(tc.loc, forbidden)
		if tc.ok != (err == nil) || err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("FileLocation(%q) = %v; want ok %v (else InvalidArgument)", tc.loc, err, tc.ok)
		}
	}
	for _, tc := range []struct {
		loc       string
		wantEmpty bool
		ok        bool
	}{
		{empty, true, true},
		{full, false, true},
		{full, true, false},
		{dir + "/nope", false, false},
		{full + "/x", false, false}, // a file
		{"rel", false, false},
		{empty + "/", false, false},
		{own, false, false},
		{dir + "/own-link", false, false},
	} {
		_, err := DirLocation(tc.loc, forbidden, tc.wantEmpty)
		if tc.ok != (err == nil) || err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("DirLocation(%q, empty %v) = %v; want ok %v (else InvalidArgument)", tc.loc, tc.wantEmpty, err, tc.ok)
		}
	}
}

func TestReadPodConfig(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		ok         bool
	}{
		{"good", `{"id":"p","containers":[{"name":"a","id":"ab12"},{"name":"b","id":"cd34"}]}`, true},
		{"not JSON", `{`, false},
		{"no containers", `{"id":"p"}`, false},
		{"a name twice", `{"containers":[{"name":"a","id":"ab"},{"name":"a","id":"cd"}]}`, false},
		{"an ID twice", `{"containers":[{"name":"a","id":"ab"},{"name":"b","id":"ab"}]}`, false},
		{"an ID that leaves the archive", `{"containers":[{"name":"a","id":"../x"}]}`, false},
		{"no name", `{"containers":[{"id":"ab"}]}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ReadPodConfig([]byte(tc.data))
			if tc.ok != (err == nil) || err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("ReadPodConfig = %v; want ok %v (else InvalidArgument)", err, tc.ok)
			}
			if err == nil && p.Containers[1].Member() != "containers/cd34.tar" {
				t.Errorf("member %q", p.Containers[1].Member())
			}
		})
	}
}

func TestIsCheckpointImage(t *testing.T) {
	if !IsCheckpointImage(map[string]string{ImageAnnotation: "c"}, nil) || !IsCheckpointImage(nil, map[string]string{ImageAnnotation: "c"}) {
		t.Error("the annotation or the label is a checkpoint image")
	}
	if IsCheckpointImage(map[string]string{"org.opencontainers.image.title": "x"}, nil) {
		t.Error("an image without the annotation is not one")
	}
}
