package container

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cri-runtime/cri-runtime/pkg/cgroup"
	"github.com/cri-runtime/cri-runtime/pkg/image"
)

// Stats are a container's resource usage.
type Stats struct {
	Timestamp     time.Time
	CPU           *cgroup.CPUStats    // nil unless running
	Memory        *cgroup.MemoryStats // nil unless running
	Cgroup        *cgroup.Sample      // the whole reading CPU and Memory come from; nil unless running
	WritableLayer *image.Usage
	// Filesystem is the filesystem holding the writable layer; nil when
	// the layer's usage is unknown or statfs failed.
	Filesystem *FilesystemStats
}

// FilesystemStats describe a filesystem as statfs(2) does.
type FilesystemStats struct {
	CapacityBytes           uint64
	InodesTotal, InodesFree uint64
}

// Stats reads the container's cgroup (while it runs), as much as detail
// says, and its writable layer's usage and filesystem.
func (s *Service) Stats(id string, detail StatsDetail) (*Stats, error) {
	c, err := s.Get(id)
	if err != nil {
		return nil, err
	}
	st := &Stats{Timestamp: time.Now()}
	if c.State == Running && c.CgroupPath != "" {
		cg, err := cgroup.Read(&s.samples, c.CgroupPath, detail)
		if err == nil {
			st.Cgroup, st.CPU, st.Memory, st.Timestamp = cg, cg.CPU, cg.Memory, cg.Timestamp
		} else {
			s.log.Debug("container cgroup stats", "container", c.ID, "err", err)
		}
	}
	if u, err := s.opts.Images.WritableLayerUsage(c.ID); err == nil {
		st.WritableLayer = &u
		if u.Mountpoint != "" {
			if st.Filesystem, err = statfs(u.Mountpoint); err != nil {
				s.log.Debug("container filesystem stats", "container", c.ID, "err", err)
			}
		}
	}
	return st, nil
}

func statfs(path string) (*FilesystemStats, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return nil, fmt.Errorf("statfs %s: %w", path, err)
	}
	return &FilesystemStats{
		CapacityBytes: fs.Blocks * uint64(fs.Bsize),
		InodesTotal:   fs.Files,
		InodesFree:    fs.Ffree,
	}, nil
}
