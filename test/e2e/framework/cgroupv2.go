package framework

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// CgroupV2 reports whether the host has the unified hierarchy alone
// (cgroup v2) at /sys/fs/cgroup, as `make test-vm`'s VM has.
func CgroupV2() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// CgroupV2File reads (trimmed) a file of the cgroup v2 cgroup that process
// pid is in, e.g. CgroupV2File(pid, "memory.max").
func CgroupV2File(pid int, file string) (string, error) {
	paths, err := CgroupPaths(pid)
	if err != nil {
		return "", err
	}
	rel, ok := paths[""]
	if !ok {
		return "", fmt.Errorf("process %d is in no cgroup v2 cgroup: %v", pid, paths)
	}
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", rel, file))
	return strings.TrimSpace(string(b)), err
}
