package reserve

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestReleaseAndRestore(t *testing.T) {
	dir := t.TempDir()
	r, err := New(dir, "reserve", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(dir, "reserve"), &st); err != nil {
			return -1
		}
		return st.Blocks * 512 // allocated, not just apparent
	}
	if !r.Held() || size() < 1<<20 {
		t.Fatalf("held %v, %d bytes allocated; want 1 MiB set aside", r.Held(), size())
	}
	if !r.Release() || r.Held() || size() != -1 {
		t.Fatalf("after Release: held %v, file size %d; want the file gone", r.Held(), size())
	}
	if r.Release() {
		t.Error("a second Release reported space given back")
	}
	if err := r.Restore(); err != nil || !r.Held() || size() < 1<<20 {
		t.Fatalf("Restore: %v, held %v, %d bytes", err, r.Held(), size())
	}
}

// On a full filesystem Restore leaves nothing half-made and says ENOSPC;
// New still succeeds (the daemon must start on a full disk).
func TestRestoreOnAFullDisk(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=512k"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	r, err := New(dir, "reserve", 1<<20)
	if err != nil {
		t.Fatalf("New on a disk too small: %v", err)
	}
	if r.Held() {
		t.Fatal("reserve held on a disk too small for it")
	}
	if err := r.Restore(); !errors.Is(err, unix.ENOSPC) {
		t.Errorf("Restore = %v; want ENOSPC", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "reserve")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a partial reserve is left: %v", err)
	}
}

func TestKeepRestoring(t *testing.T) {
	r, err := New(t.TempDir(), "reserve", 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	r.Release()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.KeepRestoring(ctx, time.Millisecond); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for !r.Held() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if !r.Held() {
		t.Fatal("the released reserve was not set aside again")
	}
}
