package cri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/image"
)

// ListImages returns all images, or the one filter.image names.
func (s *imageService) ListImages(ctx context.Context, req *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	imgs, err := s.opts.Images.List(ctx, req.GetFilter().GetImage().GetImage())
	if err != nil {
		return nil, err
	}
	out := make([]*runtimeapi.Image, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, toCRIImage(img))
	}
	return &runtimeapi.ListImagesResponse{Images: out}, nil
}

// streamBatch bounds the items of one message of a Stream* RPC.
const streamBatch = 200

// inBatches calls send with consecutive slices of at most streamBatch items:
// the Stream* RPCs send what their List* twins return, a batch a message.
func inBatches[T any](items []T, send func([]T) error) error {
	for start := 0; start < len(items); start += streamBatch {
		if err := send(items[start:min(start+streamBatch, len(items))]); err != nil {
			return err
		}
	}
	return nil
}

// StreamImages is ListImages in batches, ended by EOF.
func (s *imageService) StreamImages(req *runtimeapi.StreamImagesRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamImagesResponse]) error {
	imgs, err := s.opts.Images.List(stream.Context(), req.GetFilter().GetImage().GetImage())
	if err != nil {
		return err
	}
	out := make([]*runtimeapi.Image, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, toCRIImage(img))
	}
	return inBatches(out, func(b []*runtimeapi.Image) error {
		return stream.Send(&runtimeapi.StreamImagesResponse{Images: b})
	})
}

// ImageStatus describes one image. An image that is not there is not an
// error: the response's image is nil, as api.proto says.
func (s *imageService) ImageStatus(ctx context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	img, err := s.opts.Images.Status(ctx, req.GetImage().GetImage())
	if errors.Is(err, errdefs.ErrNotFound) {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ImageStatusResponse{Image: toCRIImage(img)}
	if req.GetVerbose() {
		info, err := json.Marshal(verboseImage{
			ID: img.ID.String(), RepoTags: img.RepoTags, RepoDigests: img.RepoDigests,
			Size: img.Size, Created: img.Created.UTC().Format("2006-01-02T15:04:05.999999999Z"),
			ManifestDigest: img.ManifestDigest.String(), Layers: layerDigests(img), Labels: img.Config.Config.Labels,
			ImageSpec: img.Config,
		})
		if err != nil {
			return nil, fmt.Errorf("encode image info: %w", err)
		}
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

// verboseImage is ImageStatus's verbose "info" document.
type verboseImage struct {
	ID             string            `json:"id"`
	RepoTags       []string          `json:"repoTags"`
	RepoDigests    []string          `json:"repoDigests"`
	Size           uint64            `json:"size"`
	Created        string            `json:"created"`
	ManifestDigest string            `json:"manifestDigest"`
	Layers         []string          `json:"layers"`
	Labels         map[string]string `json:"labels,omitempty"`
	ImageSpec      any               `json:"imageSpec"`
}

func layerDigests(img *image.Image) []string {
	out := make([]string, 0, len(img.Layers))
	for _, l := range img.Layers {
		out = append(out, l.Digest.String())
	}
	return out
}

// toCRIImage converts an image. The USER becomes Uid when numeric (the part
// before any ":group"), else Username, which the kubelet resolves for
// runAsNonRoot.
func toCRIImage(img *image.Image) *runtimeapi.Image {
	out := &runtimeapi.Image{
		Id:          img.ID.String(),
		RepoTags:    img.RepoTags,
		RepoDigests: img.RepoDigests,
		Size:        img.Size,
		Spec:        &runtimeapi.ImageSpec{Image: img.ID.String()},
		Pinned:      img.Pinned,
	}
	user, _, _ := strings.Cut(img.User, ":")
	if uid, err := strconv.ParseInt(user, 10, 64); err == nil {
		out.Uid = &runtimeapi.Int64Value{Value: uid}
	} else {
		out.Username = user
	}
	return out
}
