package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// sysctlNamespace says which of the pod's namespaces a sysctl belongs to,
// or "" when the kernel keeps it for the whole host. Only these can be set
// for one pod (the same list the kubelet's sysctl allowlist works from).
func sysctlNamespace(name string) string {
	switch {
	case strings.HasPrefix(name, "net."):
		return netNS.name
	case name == "kernel.shmall", name == "kernel.shmmax", name == "kernel.shmmni", name == "kernel.shm_rmid_forced",
		name == "kernel.msgmax", name == "kernel.msgmnb", name == "kernel.msgmni", name == "kernel.sem",
		strings.HasPrefix(name, "fs.mqueue."):
		return ipcNS.name
	case name == "kernel.hostname", name == "kernel.domainname":
		return utsNS.name
	}
	return ""
}

// normalizeSysctl accepts "a.b.c" and "a/b/c" spellings and returns the dotted one.
func normalizeSysctl(name string) string {
	if strings.Contains(name, "/") && !strings.Contains(name, ".") {
		return strings.ReplaceAll(name, "/", ".")
	}
	return name
}

// checkSysctls rejects, with InvalidArgument, a sysctl that is not
// namespaced or whose namespace the pod shares with the host.
func checkSysctls(sysctls map[string]string, own map[string]bool) error {
	for _, raw := range sortedKeys(sysctls) {
		name := normalizeSysctl(raw)
		ns := sysctlNamespace(name)
		switch {
		case ns == "":
			return fmt.Errorf("sysctl %q is not namespaced: setting it for a pod would change the whole node: %w", raw, errdefs.ErrInvalidArgument)
		case !own[ns]:
			return fmt.Errorf("sysctl %q belongs to the %s namespace, which this pod shares with the host: %w", raw, ns, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// writeSysctls sets sysctls through /proc/sys; called inside the pod's
// namespaces, where /proc/sys shows the calling thread's namespaces.
func writeSysctls(sysctls map[string]string) error {
	for _, raw := range sortedKeys(sysctls) {
		name := normalizeSysctl(raw)
		p := filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/"))
		if err := os.WriteFile(p, []byte(sysctls[raw]), 0); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("sysctl %q does not exist in this kernel: %w", raw, errdefs.ErrInvalidArgument)
			}
			return fmt.Errorf("set sysctl %s=%s: %v: %w", raw, sysctls[raw], err, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
