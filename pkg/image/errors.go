package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/docker/distribution/registry/api/errcode"
	v2 "github.com/docker/distribution/registry/api/v2"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/signature"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// classify wraps a containers/image pull error in the errdefs class the
// kubelet should see, keeping its text.
func classify(err error, named reference.Named) error {
	class := classOf(err)
	if class == nil {
		return err
	}
	registry := reference.Domain(named)
	switch {
	case errors.Is(class, errdefs.ErrNotFound):
		return fmt.Errorf("%s not found in registry %s: %w", named, registry, joinClass(err, class))
	case errors.Is(class, errdefs.ErrUnavailable):
		return fmt.Errorf("registry %s unreachable or failed mid-transfer: %w", registry, joinClass(err, class))
	case errors.Is(class, errdefs.ErrUnauthenticated):
		return fmt.Errorf("registry %s rejected the credentials: %w", registry, joinClass(err, class))
	case errors.Is(class, errdefs.ErrPermissionDenied):
		return fmt.Errorf("rejected by policy or registry %s: %w", registry, joinClass(err, class))
	case errors.Is(class, errBadLayer):
		return fmt.Errorf("image %s has a layer that cannot be unpacked safely (paths out of the layer, links to files outside it, or duplicates): %w", named, joinClass(err, errdefs.ErrInvalidArgument))
	}
	return joinClass(err, class)
}

// classOf returns the errdefs sentinel that err belongs to, or nil.
func classOf(err error) error {
	for _, c := range []error{errdefs.ErrNotFound, errdefs.ErrUnavailable, errdefs.ErrUnauthenticated,
		errdefs.ErrPermissionDenied, errdefs.ErrInvalidArgument, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, c) {
			return c
		}
	}
	// A registry may answer with a list of errors; the first one says why.
	var list errcode.Errors
	if errors.As(err, &list) && len(list) > 0 {
		return classOf(list[0])
	}
	var (
		unauthorized docker.ErrUnauthorizedForCredentials
		coder        errcode.ErrorCoder
		status       docker.UnexpectedHTTPStatusError
		policy       signature.PolicyRequirementError
		opErr        *net.OpError
		dnsErr       *net.DNSError
	)
	switch {
	case errors.As(err, &unauthorized):
		return errdefs.ErrUnauthenticated
	case errors.As(err, &policy):
		return errdefs.ErrPermissionDenied
	case errors.As(err, &coder):
		switch coder.ErrorCode() {
		case v2.ErrorCodeManifestUnknown, v2.ErrorCodeNameUnknown, v2.ErrorCodeBlobUnknown:
			return errdefs.ErrNotFound
		case errcode.ErrorCodeUnauthorized:
			return errdefs.ErrUnauthenticated
		case errcode.ErrorCodeDenied:
			return errdefs.ErrPermissionDenied
		case errcode.ErrorCodeUnavailable, errcode.ErrorCodeTooManyRequests:
			return errdefs.ErrUnavailable
		}
	case errors.As(err, &status):
		switch {
		case status.StatusCode == http.StatusNotFound:
			return errdefs.ErrNotFound
		case status.StatusCode == http.StatusUnauthorized:
			return errdefs.ErrUnauthenticated
		case status.StatusCode == http.StatusForbidden:
			return errdefs.ErrPermissionDenied
		case status.StatusCode >= 500 || status.StatusCode == http.StatusTooManyRequests:
			return errdefs.ErrUnavailable
		}
	case errors.Is(err, docker.ErrTooManyRequests):
		return errdefs.ErrUnavailable
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.As(err, &opErr), errors.As(err, &dnsErr):
		// (Not any net.Error: a bare syscall.Errno is one, and a local disk
		// error is not the registry's.)
		return errdefs.ErrUnavailable
	}
	// The store refused to apply a layer: containers/image has no error
	// type for it, only this wording (storage_dest.go, commitLayer). A
	// full disk is not the image's fault.
	if strings.Contains(err.Error(), "adding layer with blob") && !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EDQUOT) {
		return errBadLayer
	}
	return nil
}

// errBadLayer marks a layer the store would not unpack; the kubelet sees
// InvalidArgument, since pulling the image again cannot help.
var errBadLayer = errors.New("bad layer")

// joinClass makes err match class with errors.Is without changing its text.
func joinClass(err, class error) error {
	if errors.Is(err, class) {
		return err
	}
	return &classified{err: err, class: class}
}

type classified struct{ err, class error }

func (c *classified) Error() string   { return c.err.Error() }
func (c *classified) Unwrap() []error { return []error{c.err, c.class} }
