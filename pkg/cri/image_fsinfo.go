package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/image"
)

// ImageFsInfo reports the filesystems holding images and, when they are on a
// different filesystem, containers' writable layers. The kubelet's image
// client calls it to validate its connection, and its image GC and eviction
// manager act on the numbers.
func (s *imageService) ImageFsInfo(context.Context, *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	images, containers, err := s.opts.ImageFs.FsUsage()
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ImageFsInfoResponse{
		ImageFilesystems:     fsUsages(images),
		ContainerFilesystems: fsUsages(containers),
	}, nil
}

func fsUsages(in []image.Usage) []*runtimeapi.FilesystemUsage {
	out := make([]*runtimeapi.FilesystemUsage, 0, len(in))
	for _, u := range in {
		out = append(out, &runtimeapi.FilesystemUsage{
			Timestamp:  u.Timestamp.UnixNano(),
			FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: u.Mountpoint},
			UsedBytes:  &runtimeapi.UInt64Value{Value: u.UsedBytes},
			InodesUsed: &runtimeapi.UInt64Value{Value: u.InodesUsed},
		})
	}
	return out
}
