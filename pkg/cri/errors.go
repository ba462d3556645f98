package cri

import (
	"context"
	"errors"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// codeOf maps the errdefs taxonomy (and context errors) to gRPC codes. The
// first match wins, so more specific sentinels come first.
var codeOf = []struct {
	target error
	code   codes.Code
}{
	{errdefs.ErrInvalidArgument, codes.InvalidArgument},
	{errdefs.ErrNotFound, codes.NotFound},
	{errdefs.ErrAlreadyExists, codes.AlreadyExists},
	{errdefs.ErrFailedPrecondition, codes.FailedPrecondition},
	{errdefs.ErrUnimplemented, codes.Unimplemented},
	{errdefs.ErrPermissionDenied, codes.PermissionDenied},
	{errdefs.ErrUnauthenticated, codes.Unauthenticated},
	{errdefs.ErrResourceExhausted, codes.ResourceExhausted},
	// A full disk or quota under --root (a record, a layer, a log): retry
	// once space returns, which is what ResourceExhausted tells the kubelet.
	{syscall.ENOSPC, codes.ResourceExhausted},
	{syscall.EDQUOT, codes.ResourceExhausted},
	{errdefs.ErrUnavailable, codes.Unavailable},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
	{context.Canceled, codes.Canceled},
}

// toStatus converts a domain error into a gRPC status error. It is called once
// per RPC, by the status interceptor. An error that already carries a gRPC
// status keeps it; an error outside the taxonomy becomes Unknown.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if s, ok := status.FromError(err); ok {
		return s.Err()
	}
	for _, m := range codeOf {
		if errors.Is(err, m.target) {
			return status.Error(m.code, err.Error())
		}
	}
	return status.Error(codes.Unknown, err.Error())
}
