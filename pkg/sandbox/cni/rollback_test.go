package cni

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A failed ADD is followed by a DEL even when the failure is the caller
// giving up: the kubelet's cancelled request kills the ADD, and the DEL
// still runs, on a context of its own.
func TestFailedAddIsDeletedAfterTheCallerGaveUp(t *testing.T) {
	confDir, binDir, marks := t.TempDir(), t.TempDir(), t.TempDir()
	// ADD says it began, then waits to be killed; DEL says it ran.
	script := `#!/bin/sh
case "$CNI_COMMAND" in
VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["1.0.0"]}' ;;
ADD) touch ` + marks + `/add; exec sleep 600 ;;
DEL) touch ` + marks + `/del ;;
esac
`
	if err := os.WriteFile(filepath.Join(binDir, "stuck"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	writeConf(t, confDir, "10-stuck.conflist", `{"cniVersion":"1.0.0","name":"stuck","plugins":[{"type":"stuck"}]}`)
	m := newManager(t, confDir, binDir)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := m.Attach(ctx, Pod{ID: "pod1", Name: "p", Namespace: "ns", UID: "u", NetNS: "/proc/self/ns/net"})
		done <- err
	}()
	waitFor(t, filepath.Join(marks, "add"))
	cancel()
	if err := <-done; err == nil {
		t.Fatal("Attach succeeded with its ADD killed")
	}
	if _, err := os.Stat(filepath.Join(marks, "del")); err != nil {
		t.Fatalf("no CNI DEL after the failed ADD: %v", err)
	}
}

// waitFor polls for path, with a deadline that only stops a broken test.
func waitFor(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
	}
	t.Fatalf("%s never appeared", path)
}
