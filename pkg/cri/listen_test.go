package cri

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func TestListen(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sub", "cri.sock")

	lis, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode = %v, %v; want 0660", fi.Mode(), err)
	}
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if _, err := Listen(sock); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("second Listen on a live socket = %v; want AlreadyExists", err)
	}

	// A socket nobody answers on any more is stale and gets replaced.
	lis.(interface{ SetUnlinkOnClose(bool) }).SetUnlinkOnClose(false)
	lis.Close()
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("stale socket should still exist for this test: %v", err)
	}
	lis2, err := Listen(sock)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	lis2.Close()

	// Anything that is not a socket is left alone.
	plain := filepath.Join(dir, "file")
	if err := os.WriteFile(plain, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(plain); err == nil {
		t.Fatal("Listen replaced a regular file")
	}
	if b, _ := os.ReadFile(plain); string(b) != "keep me" {
		t.Fatal("regular file was modified")
	}
}
