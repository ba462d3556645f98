// Package errdefs is the small error taxonomy shared by every domain package.
//
// Domain code wraps one of these sentinels ("create container: %w") and the CRI
// adapter turns the wrapped sentinel into a gRPC status code exactly once, in an
// interceptor. Matching is always done with errors.Is, never by string.
package errdefs

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalidArgument: the request itself is malformed or names something impossible.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotFound: the object the request names does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: an object with the same identity already exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrFailedPrecondition: the object exists but is in the wrong state for the request.
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrUnavailable: a dependency (OCI runtime, network, registry) cannot be reached now; retry may help.
	ErrUnavailable = errors.New("unavailable")
	// ErrUnimplemented: the RPC or option is not supported by this runtime (yet).
	ErrUnimplemented = errors.New("not implemented")
	// ErrPermissionDenied: the caller, or a signature policy, forbids the operation.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrUnauthenticated: credentials were missing or rejected (e.g. by a registry).
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrResourceExhausted: a limit was hit (output cap, disk, quota).
	ErrResourceExhausted = errors.New("resource exhausted")
)

// NotReadyError says why a subsystem (the OCI runtime, the pod network) cannot
// serve. Reason is one CamelCase word for machines, as CRI runtime conditions
// carry; the wrapped error is the human explanation. It matches ErrUnavailable.
type NotReadyError struct {
	Reason string
	Err    error
}

func (e *NotReadyError) Error() string { return e.Err.Error() }

// Unwrap lets errors.Is see both ErrUnavailable and the cause.
func (e *NotReadyError) Unwrap() []error { return []error{ErrUnavailable, e.Err} }

// NotReady builds a NotReadyError from a reason and a formatted message.
func NotReady(reason, format string, args ...any) error {
	return &NotReadyError{Reason: reason, Err: fmt.Errorf(format, args...)}
}
