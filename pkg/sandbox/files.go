package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// The files every container of a pod shares, kept in the pod's state dir.
const (
	hostnameFile = "hostname"
	hostsFile    = "hosts"
	resolvFile   = "resolv.conf"
	shmDir       = "shm"
)

// DefaultShmSize is the size of a pod's /dev/shm, as Docker and containerd
// use; the annotation ShmSizeAnnotation overrides it per pod.
const DefaultShmSize = 64 << 20

// ShmSizeAnnotation sets a pod's /dev/shm size in bytes.
const ShmSizeAnnotation = "io.cri-runtime.shm-size"

// resolvConf renders resolv.conf from the pod's DNS settings. With none at
// all the host's file is used, as for the kubelet's "Default" DNS policy.
func resolvConf(dns *DNSConfig, hostResolv string) ([]byte, error) {
	if dns == nil || len(dns.Servers)+len(dns.Searches)+len(dns.Options) == 0 {
		b, err := os.ReadFile(hostResolv)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return b, err
	}
	var b bytes.Buffer
	if len(dns.Searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(dns.Searches, " "))
	}
	for _, s := range dns.Servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(dns.Options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(dns.Options, " "))
	}
	return b.Bytes(), nil
}

// hostsContent renders /etc/hosts: the loopback names and the pod's own
// addresses under its hostname.
func hostsContent(hostname string, ips []string) []byte {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
	for _, ip := range ips {
		fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
	}
	return b.Bytes()
}

// writeFileAtomic replaces path's content in one rename, so a container
// never reads half a file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// mountShm mounts the pod's own /dev/shm tmpfs at dir/shm.
func mountShm(dir string, size int64) error {
	target := filepath.Join(dir, shmDir)
	if err := os.MkdirAll(target, 0o1777); err != nil {
		return err
	}
	opts := fmt.Sprintf("mode=1777,size=%d", size)
	if err := unix.Mount("shm", target, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		return fmt.Errorf("mount /dev/shm for the pod: %w", err)
	}
	return nil
}

// unmountShm undoes mountShm; absent is fine.
func unmountShm(dir string) error {
	target := filepath.Join(dir, shmDir)
	if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount pod /dev/shm: %w", err)
	}
	return nil
}
