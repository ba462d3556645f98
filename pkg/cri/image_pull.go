package cri

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/image"
)

// PullImage fetches the image and returns its ID as the image reference
// the kubelet then passes to CreateContainer.
func (s *imageService) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	auth, err := pullAuth(req.GetAuth())
	if err != nil {
		return nil, err
	}
	img, err := s.opts.Images.Pull(ctx, req.GetImage().GetImage(), auth)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PullImageResponse{ImageRef: img.ID.String()}, nil
}

// pullAuth converts the kubelet's credentials; "auth" is base64 "user:pass",
// as in a docker config file.
func pullAuth(a *runtimeapi.AuthConfig) (*image.Auth, error) {
	if a == nil {
		return nil, nil
	}
	out := &image.Auth{Username: a.GetUsername(), Password: a.GetPassword(), IdentityToken: a.GetIdentityToken(), RegistryToken: a.GetRegistryToken()}
	if a.GetAuth() != "" && out.Username == "" && out.Password == "" {
		raw, err := base64.StdEncoding.DecodeString(a.GetAuth())
		if err != nil {
			return nil, fmt.Errorf("auth.auth is not base64: %w", errdefs.ErrInvalidArgument)
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, fmt.Errorf("auth.auth must encode \"username:password\": %w", errdefs.ErrInvalidArgument)
		}
		out.Username, out.Password = user, pass
	}
	return out, nil
}
