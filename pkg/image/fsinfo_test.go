package image

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDirUsage(t *testing.T) {
	dir := t.TempDir()
	empty, err := DirUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if empty.InodesUsed != 1 || empty.Mountpoint == "" || empty.Timestamp.IsZero() {
		t.Fatalf("empty dir usage = %+v", empty)
	}

	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i) // not sparse
	}
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "a", "b", "blob")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(f, filepath.Join(dir, "a", "hardlink")); err != nil {
		t.Fatal(err)
	}
	u, err := DirUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if u.InodesUsed != 4 { // dir, a, a/b, the file (its hard link counted once)
		t.Fatalf("inodes = %d; want 4", u.InodesUsed)
	}
	if grown := u.UsedBytes - empty.UsedBytes; grown < 1<<20 || grown > 1<<20+64<<10 {
		t.Fatalf("bytes grew by %d; want about 1 MiB (hard link counted once)", grown)
	}
	if u.Mountpoint != empty.Mountpoint {
		t.Fatalf("mount point changed: %s vs %s", u.Mountpoint, empty.Mountpoint)
	}

	missing, err := DirUsage(filepath.Join(dir, "absent"))
	if err != nil || missing.UsedBytes != 0 || missing.Mountpoint != u.Mountpoint {
		t.Fatalf("missing dir usage = %+v, %v", missing, err)
	}
}

func TestMountpointOfRoot(t *testing.T) {
	if mp, err := mountpointOf("/"); err != nil || mp != "/" {
		t.Fatalf("mountpointOf(/) = %q, %v", mp, err)
	}
	if mp, err := mountpointOf("/proc/self"); err != nil || mp != "/proc" {
		t.Fatalf("mountpointOf(/proc/self) = %q, %v", mp, err)
	}
}
