package cri

import (
	"context"
	"log/slog"
	"path"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DiskReserve is space set aside on the daemon's disk (pkg/reserve).
type DiskReserve interface {
	// Release gives the space back; false when there was none.
	Release() bool
	// Restore sets it aside again, when there is room.
	Restore() error
}

// freesSpace lists the calls the kubelet makes to free a full disk. Each
// writes a record before it deletes anything, so on a full disk it fails
// like any other write; these may take the reserve. All are idempotent,
// which makes running one again after a failure safe.
var freesSpace = map[string]bool{
	"StopContainer": true, "RemoveContainer": true,
	"StopPodSandbox": true, "RemovePodSandbox": true,
	"RemoveImage": true,
}

// unaryReserve runs a call that frees space once more, with the reserve
// released, when it failed for want of space; after such a call succeeds
// it sets the reserve aside again, best effort.
func unaryReserve(r DiskReserve) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if r == nil || !freesSpace[path.Base(info.FullMethod)] {
			return handler(ctx, req)
		}
		resp, err := handler(ctx, req)
		if status.Code(err) == codes.ResourceExhausted && r.Release() {
			loggerFrom(ctx, slog.Default()).Warn("the disk is full: released the disk reserve for a call that frees space")
			resp, err = handler(ctx, req)
		}
		if err == nil {
			if rerr := r.Restore(); rerr != nil {
				loggerFrom(ctx, slog.Default()).Debug("disk reserve not restored yet", "err", rerr)
			}
		}
		return resp, err
	}
}
