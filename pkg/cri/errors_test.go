package cri

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func TestToStatus(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("stop container abc: %w", err) }
	for _, tc := range []struct {
		name string
		err  error
		code codes.Code
	}{
		{"invalid argument", wrap(errdefs.ErrInvalidArgument), codes.InvalidArgument},
		{"not found", wrap(errdefs.ErrNotFound), codes.NotFound},
		{"already exists", wrap(errdefs.ErrAlreadyExists), codes.AlreadyExists},
		{"failed precondition", wrap(errdefs.ErrFailedPrecondition), codes.FailedPrecondition},
		{"unavailable", wrap(errdefs.ErrUnavailable), codes.Unavailable},
		{"unimplemented", wrap(errdefs.ErrUnimplemented), codes.Unimplemented},
		{"permission denied", wrap(errdefs.ErrPermissionDenied), codes.PermissionDenied},
		{"unauthenticated", wrap(errdefs.ErrUnauthenticated), codes.Unauthenticated},
		{"resource exhausted", wrap(errdefs.ErrResourceExhausted), codes.ResourceExhausted},
		{"disk full", wrap(&fs.PathError{Op: "write", Path: "/r/c.json", Err: syscall.ENOSPC}), codes.ResourceExhausted},
		{"quota", wrap(&fs.PathError{Op: "write", Path: "/r/c.json", Err: syscall.EDQUOT}), codes.ResourceExhausted},
		{"disk full, also unavailable", errors.Join(syscall.ENOSPC, errdefs.ErrUnavailable), codes.ResourceExhausted},
		{"other errno", wrap(syscall.EIO), codes.Unknown},
		{"not ready", errdefs.NotReady("X", "runc missing"), codes.Unavailable},
		{"deadline", wrap(context.DeadlineExceeded), codes.DeadlineExceeded},
		{"canceled", wrap(context.Canceled), codes.Canceled},
		{"joined: first sentinel wins", errors.Join(errdefs.ErrNotFound, errdefs.ErrUnavailable), codes.NotFound},
		{"existing status kept", status.Error(codes.OutOfRange, "x"), codes.OutOfRange},
		{"unclassified", errors.New("disk on fire"), codes.Unknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := toStatus(tc.err)
			if status.Code(got) != tc.code {
				t.Fatalf("toStatus(%v) code = %v; want %v", tc.err, status.Code(got), tc.code)
			}
			if s, _ := status.FromError(got); s.Message() != tc.err.Error() && tc.code != codes.OutOfRange {
				t.Fatalf("message %q; want the error text %q", s.Message(), tc.err.Error())
			}
		})
	}
	if toStatus(nil) != nil {
		t.Fatal("toStatus(nil) != nil")
	}
}

func TestInBatches(t *testing.T) {
	items := make([]int, 2*streamBatch+50)
	var sizes []int
	if err := inBatches(items, func(b []int) error { sizes = append(sizes, len(b)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(sizes) != 3 || sizes[0] != streamBatch || sizes[1] != streamBatch || sizes[2] != 50 {
		t.Fatalf("batch sizes = %v", sizes)
	}
	calls := 0
	boom := errors.New("client gone")
	if err := inBatches(items, func([]int) error { calls++; return boom }); err != boom || calls != 1 {
		t.Fatalf("after a failed send: err %v, %d calls; want the error at once", err, calls)
	}
	if err := inBatches([]int(nil), func([]int) error { t.Fatal("no items, no message"); return nil }); err != nil {
		t.Fatal(err)
	}
}
