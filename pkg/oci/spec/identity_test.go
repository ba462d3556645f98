package spec

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func TestIdentity(t *testing.T) {
	for _, tc := range []struct {
		name      string
		imageUser string
		sec       Security
		uid, gid  uint32
		gids      []uint32
		username  string
		errHas    string // non-empty: want InvalidArgument mentioning this
	}{
		{name: "no user is root", uid: 0, gid: 0, gids: []uint32{0, 10}, username: "root"},
		{name: "image name", imageUser: "alice", uid: 1000, gid: 1000, gids: []uint32{1000, 10, 29}, username: "alice"},
		{name: "image uid with passwd entry", imageUser: "1000", uid: 1000, gid: 1000, gids: []uint32{1000, 10, 29}, username: "alice"},
		{name: "image uid:gid", imageUser: "1000:50", uid: 1000, gid: 50, gids: []uint32{50, 10, 29}, username: "alice"},
		{name: "image name:group", imageUser: "alice:staff", uid: 1000, gid: 50, gids: []uint32{50, 10, 29}, username: "alice"},
		{name: "image uid without entry", imageUser: "4242", uid: 4242, gid: 0, gids: []uint32{0}},
		{name: "image uid:gid without entries", imageUser: "4242:4243", uid: 4242, gid: 4243, gids: []uint32{4243}},
		{name: "alias name keeps its name", imageUser: "toor", uid: 0, gid: 0, gids: []uint32{0}, username: "toor"},
		{
			name: "runAsUser beats image user", imageUser: "alice:staff",
			sec: Security{RunAsUser: ptr(int64(1001))},
			uid: 1001, gid: 1001, gids: []uint32{1001, 44}, username: "bob",
		},
		{
			name: "runAsUsername", imageUser: "alice",
			sec: Security{RunAsUsername: "bob"},
			uid: 1001, gid: 1001, gids: []uint32{1001, 44}, username: "bob",
		},
		{
			name: "runAsUser and runAsGroup",
			sec:  Security{RunAsUser: ptr(int64(1001)), RunAsGroup: ptr(int64(2000))},
			uid:  1001, gid: 2000, gids: []uint32{2000, 44}, username: "bob",
		},
		{
			name: "runAsUsername and runAsGroup",
			sec:  Security{RunAsUsername: "alice", RunAsGroup: ptr(int64(0))},
			uid:  1000, gid: 0, gids: []uint32{0, 10, 29}, username: "alice",
		},
		{
			name: "merge adds member groups and supplemental groups", imageUser: "alice",
			sec: Security{SupplementalGroups: []int64{100, 29}},
			uid: 1000, gid: 1000, gids: []uint32{1000, 10, 29, 100}, username: "alice",
		},
		{
			name: "strict uses only supplemental groups", imageUser: "alice",
			sec: Security{SupplementalGroups: []int64{100}, SupplementalGroupsStrict: true},
			uid: 1000, gid: 1000, gids: []uint32{1000, 100}, username: "alice",
		},
		{name: "unknown image user", imageUser: "mallory", errHas: "mallory"},
		{name: "unknown runAsUsername", sec: Security{RunAsUsername: "eve"}, errHas: "eve"},
		{name: "unknown group name", imageUser: "alice:nogroup", errHas: "nogroup"},
		{name: "runAsGroup alone", sec: Security{RunAsGroup: ptr(int64(5))}, errHas: "runAsGroup"},
		{name: "negative runAsUser", sec: Security{RunAsUser: ptr(int64(-1))}, errHas: "runAsUser"},
		{name: "negative supplemental group", sec: Security{SupplementalGroups: []int64{-3}}, errHas: "supplemental"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uid, gid, gids, name, err := Identity(newRootfs(t), tc.imageUser, tc.sec)
			if tc.errHas != "" {
				wantInvalid(t, err)
				if !strings.Contains(err.Error(), tc.errHas) {
					t.Errorf("error %q does not mention %q", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if uid != tc.uid || gid != tc.gid || name != tc.username || !slices.Equal(gids, tc.gids) {
				t.Errorf("got uid=%d gid=%d gids=%v name=%q, want uid=%d gid=%d gids=%v name=%q",
					uid, gid, gids, name, tc.uid, tc.gid, tc.gids, tc.username)
			}
		})
	}
}

func TestIdentityWithoutUserFiles(t *testing.T) {
	empty := t.TempDir()
	for _, tc := range []struct {
		user     string
		uid, gid uint32
		wantErr  bool
	}{
		{user: "", uid: 0, gid: 0},
		{user: "1000", uid: 1000, gid: 0},
		{user: "1000:1000", uid: 1000, gid: 1000},
		{user: "alice", wantErr: true},
		{user: "1000:staff", wantErr: true},
	} {
		t.Run(tc.user, func(t *testing.T) {
			uid, gid, gids, name, err := Identity(empty, tc.user, Security{SupplementalGroups: []int64{7}})
			if tc.wantErr {
				wantInvalid(t, err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if uid != tc.uid || gid != tc.gid || name != "" || !slices.Equal(gids, []uint32{tc.gid, 7}) {
				t.Errorf("got %d:%d %v %q", uid, gid, gids, name)
			}
		})
	}
}

// A rootfs' /etc/passwd that links outside it must be resolved inside the
// rootfs, never to the host file it names.
func TestIdentitySymlinkStaysInRootfs(t *testing.T) {
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "passwd"), "evil:x:4242:4242::/:/bin/sh\n")
	writeFile(t, filepath.Join(outside, "group"), "evilgroup:x:4343:evil\n")

	for _, tc := range []struct{ name, passwdTarget, groupTarget string }{
		{"absolute", filepath.Join(outside, "passwd"), filepath.Join(outside, "group")},
		{"relative", "../../../../../../../../.." + filepath.Join(outside, "passwd"), "../../../../../../../../.." + filepath.Join(outside, "group")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(tc.passwdTarget, filepath.Join(root, "etc", "passwd")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(tc.groupTarget, filepath.Join(root, "etc", "group")); err != nil {
				t.Fatal(err)
			}
			_, _, _, _, err := Identity(root, "evil", Security{})
			wantInvalid(t, err)

			uid, gid, gids, name, err := Identity(root, "4242", Security{})
			if err != nil {
				t.Fatal(err)
			}
			if uid != 4242 || gid != 0 || name != "" || !slices.Equal(gids, []uint32{0}) {
				t.Errorf("read the host's files: %d:%d %v %q", uid, gid, gids, name)
			}
		})
	}

	t.Run("link inside rootfs is followed", func(t *testing.T) {
		root := t.TempDir()
		writeFile(t, filepath.Join(root, "etc", "real", "passwd"), testPasswd)
		if err := os.Symlink("/etc/real/passwd", filepath.Join(root, "etc", "passwd")); err != nil {
			t.Fatal(err)
		}
		uid, _, _, _, err := Identity(root, "alice", Security{})
		if err != nil || uid != 1000 {
			t.Fatalf("uid %d, err %v; want 1000", uid, err)
		}
	})
}

func TestIdentityRejectsSpecialFiles(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "etc", "passwd"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Reading a FIFO would block forever; Identity must refuse instead.
	_, _, _, _, err := Identity(root, "alice", Security{})
	wantInvalid(t, err)

	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc", "group"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, _, _, _, err = Identity(dir, "0", Security{})
	wantInvalid(t, err)
}

// A passwd line longer than the parser takes (64 KiB; group lines may be
// longer) is the image's fault: InvalidArgument, not an unexplained
// failure (found by FuzzBuild).
func TestIdentityRejectsOverlongLines(t *testing.T) {
	long := strings.Repeat("x", 70<<10)
	for _, file := range []string{"passwd"} {
		root := t.TempDir()
		writeFile(t, filepath.Join(root, "etc", "passwd"), testPasswd)
		writeFile(t, filepath.Join(root, "etc", "group"), "root:x:0:\n")
		writeFile(t, filepath.Join(root, "etc", file), "alice:x:1000:1000::/:/bin/sh\n"+long+"\n")
		for _, user := range []string{"alice", "1000"} {
			_, _, _, _, err := Identity(root, user, Security{})
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("%s with an overlong line, user %s: %v; want InvalidArgument", file, user, err)
			}
		}
	}
}

func TestBuildUser(t *testing.T) {
	in := baseInput(t)
	in.Image.User = "alice"
	in.Security.SupplementalGroups = []int64{500}
	s := mustBuild(t, in)
	u := s.Process.User
	if u.UID != 1000 || u.GID != 1000 || !slices.Equal(u.AdditionalGids, []uint32{1000, 10, 29, 500}) {
		t.Errorf("user = %+v", u)
	}

	in.Image.User = "nobody-here"
	_, err := Build(in)
	wantInvalid(t, err)
}
