package image

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/docker/distribution/registry/api/errcode"
	v2 "github.com/docker/distribution/registry/api/v2"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/signature"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func TestClassify(t *testing.T) {
	named, _ := reference.ParseNormalizedNamed("quay.io/team/app:v1")
	dialErr := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tc := range []struct {
		name  string
		err   error
		class error
		words string // the message must mention this
	}{
		{"manifest unknown", fmt.Errorf("reading manifest v1: %w", errcode.Errors{v2.ErrorCodeManifestUnknown.WithMessage("manifest unknown")}), errdefs.ErrNotFound, "quay.io/team/app:v1 not found in registry quay.io"},
		{"name unknown", v2.ErrorCodeNameUnknown.WithMessage("repository name not known"), errdefs.ErrNotFound, "not found"},
		{"bare 404", docker.UnexpectedHTTPStatusError{StatusCode: http.StatusNotFound}, errdefs.ErrNotFound, "quay.io"},
		{"credentials", docker.ErrUnauthorizedForCredentials{Err: errors.New("401")}, errdefs.ErrUnauthenticated, "rejected the credentials"},
		{"unauthorized code", errcode.ErrorCodeUnauthorized.WithMessage("authentication required"), errdefs.ErrUnauthenticated, "quay.io"},
		{"denied", errcode.ErrorCodeDenied.WithMessage("denied"), errdefs.ErrPermissionDenied, "quay.io"},
		{"signature", signature.PolicyRequirementError("Running image docker://x is rejected by policy."), errdefs.ErrPermissionDenied, "rejected by policy"},
		{"connection refused", fmt.Errorf("pinging container registry quay.io: %w", dialErr), errdefs.ErrUnavailable, "registry quay.io unreachable"},
		{"server error", docker.UnexpectedHTTPStatusError{StatusCode: 503}, errdefs.ErrUnavailable, "unreachable"},
		{"cut mid-blob", fmt.Errorf("writing blob: happened during read: %w", io.ErrUnexpectedEOF), errdefs.ErrUnavailable, "mid-transfer"},
		{"too many requests", docker.ErrTooManyRequests, errdefs.ErrUnavailable, "quay.io"},
		{"hostile layer", fmt.Errorf("writing blob: adding layer with blob \"sha256:ab\"/\"\"/\"sha256:cd\": unpacking failed (error: exit status 1; output: open /etc/shadow: no such file or directory)"), errdefs.ErrInvalidArgument, "cannot be unpacked safely"},
		{"disk full while unpacking", fmt.Errorf("writing blob: adding layer with blob \"sha256:ab\": %w", syscall.ENOSPC), nil, "no space"},
		{"unknown", errors.New("checksum mismatch"), nil, "checksum mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err, named)
			if tc.class != nil && !errors.Is(got, tc.class) {
				t.Fatalf("classify(%v) = %v; want class %v", tc.err, got, tc.class)
			}
			if tc.class == nil && got != tc.err {
				t.Fatalf("unclassified error changed: %v", got)
			}
			if !strings.Contains(got.Error(), tc.words) || !strings.Contains(got.Error(), tc.err.Error()) {
				t.Fatalf("message %q must contain %q and the original error", got, tc.words)
			}
		})
	}
}
