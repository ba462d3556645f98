package container

import (
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/cgroup"
	"github.com/cri-runtime/cri-runtime/pkg/image"
)

// Stats are a container's resource usage.
type Stats struct {
	Timestamp     time.Time
	CPU           *cgroup.CPUStats    // nil unless running
	Memory        *cgroup.MemoryStats // nil unless running
	WritableLayer *image.Usage
}

// Stats reads the container's cgroup (while it runs) and its writable
// layer's usage.
func (s *Service) Stats(id string) (*Stats, error) {
	c, err := s.Get(id)
	if err != nil {
		return nil, err
	}
	st := &Stats{Timestamp: time.Now()}
	if c.State == Running && c.CgroupPath != "" {
		cpu, mem, at, err := cgroup.Stats(&s.samples, c.CgroupPath)
		if err == nil {
			st.CPU, st.Memory, st.Timestamp = cpu, mem, at
		} else {
			s.log.Debug("container cgroup stats", "container", c.ID, "err", err)
		}
	}
	if u, err := s.opts.Images.WritableLayerUsage(c.ID); err == nil {
		st.WritableLayer = &u
	}
	return st, nil
}
