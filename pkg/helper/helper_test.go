package helper

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
)

func TestParseHierarchies(t *testing.T) {
	mountinfo := `22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw
30 22 0:26 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid shared:11 - cgroup cgroup rw,xattr,name=systemd
35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:15 - cgroup cgroup rw,cpu,cpuacct
36 30 0:32 /nested /sys/fs/cgroup/memory rw shared:16 - cgroup cgroup rw,memory
37 30 0:33 / /mnt/with\040space rw - cgroup cgroup rw,pids
`
	got, err := parseHierarchies(strings.NewReader(mountinfo))
	if err != nil {
		t.Fatal(err)
	}
	// v1 hierarchies only, mounted at their root; escapes undone.
	want := []string{"/sys/fs/cgroup/systemd", "/sys/fs/cgroup/cpu,cpuacct", "/mnt/with space"}
	if !slices.Equal(got, want) {
		t.Errorf("parseHierarchies = %q; want %q", got, want)
	}
}

func TestRunCommands(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		handled bool
		code    int
		stderr  string
	}{
		{nil, false, 0, ""},
		{[]string{"serve"}, false, 0, ""},
		{[]string{"pause", "a", "b"}, true, 2, "usage"},
		{[]string{"reap-exec"}, true, ReapExecFailed, ReapExecPrefix},
	} {
		var stderr bytes.Buffer
		code, handled := Run(context.Background(), tc.args, &stderr)
		if handled != tc.handled || code != tc.code || !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("Run(%q) = %d, %v (stderr %q); want %d, %v with %q", tc.args, code, handled, stderr.String(), tc.code, tc.handled, tc.stderr)
		}
	}
}
