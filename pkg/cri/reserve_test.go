package cri

import (
	"context"
	"path"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fakeReserve is a disk whose reserve is the only free space.
type fakeReserve struct {
	held              bool
	released, restore int
}

var _ DiskReserve = (*fakeReserve)(nil)

func (f *fakeReserve) Release() bool {
	if !f.held {
		return false
	}
	f.held = false
	f.released++
	return true
}

func (f *fakeReserve) Restore() error { f.restore++; f.held = true; return nil }

func TestReserveRetriesCallsThatFreeSpace(t *testing.T) {
	full := status.Error(codes.ResourceExhausted, "no space left on device")
	for _, tc := range []struct {
		method       string
		held         bool
		wantCode     codes.Code
		wantCalls    int
		wantReleased int
	}{
		{"/runtime.v1.RuntimeService/RemoveContainer", true, codes.OK, 2, 1},
		{"/runtime.v1.RuntimeService/StopPodSandbox", true, codes.OK, 2, 1},
		{"/runtime.v1.ImageService/RemoveImage", true, codes.OK, 2, 1},
		// Nothing left to release: the call fails as it did.
		{"/runtime.v1.RuntimeService/RemovePodSandbox", false, codes.ResourceExhausted, 1, 0},
		// Calls that take space never touch the reserve.
		{"/runtime.v1.RuntimeService/CreateContainer", true, codes.ResourceExhausted, 1, 0},
		{"/runtime.v1.ImageService/PullImage", true, codes.ResourceExhausted, 1, 0},
	} {
		t.Run(tc.method, func(t *testing.T) {
			r := &fakeReserve{held: tc.held}
			calls := 0
			handler := func(ctx context.Context, req any) (any, error) {
				calls++
				if r.released == 0 || !freesSpace[path.Base(tc.method)] {
					return nil, full // the disk is full until the reserve is released
				}
				return "ok", nil
			}
			_, err := unaryReserve(r)(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: tc.method}, handler)
			if status.Code(err) != tc.wantCode || calls != tc.wantCalls || r.released != tc.wantReleased {
				t.Errorf("code %v, %d calls, %d releases; want %v, %d, %d", status.Code(err), calls, r.released, tc.wantCode, tc.wantCalls, tc.wantReleased)
			}
			if err == nil && !r.held {
				t.Error("the reserve was not set aside again after the call freed space")
			}
		})
	}
}
