package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// dialTimeout bounds connecting to a port inside a pod: it is the pod's own
// loopback, so anything slower means nothing will answer.
const dialTimeout = 10 * time.Second

// DialPort connects to TCP port on the pod's loopback, from inside its
// network namespace (entered by a throwaway thread of ours, so the image
// needs no tools of its own). IPv4 is tried first, then IPv6, as a client
// of "localhost" in the pod would. Host-network pods are reached on the
// host's loopback.
func (m *Manager) DialPort(ctx context.Context, id string, port int32) (net.Conn, error) {
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("port %d is not a TCP port: %w", port, errdefs.ErrInvalidArgument)
	}
	sb, err := m.Get(id)
	if err != nil {
		return nil, err
	}
	if sb.State != Ready {
		return nil, fmt.Errorf("pod sandbox %s is not ready: %w", sb.ID, errdefs.ErrFailedPrecondition)
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	dial := func() (net.Conn, error) {
		var d net.Dialer
		p := strconv.Itoa(int(port))
		conn, err := d.DialContext(ctx, "tcp4", net.JoinHostPort("127.0.0.1", p))
		if err != nil && errors.Is(err, syscall.ECONNREFUSED) {
			if conn6, err6 := d.DialContext(ctx, "tcp6", net.JoinHostPort("::1", p)); err6 == nil {
				return conn6, nil
			}
		}
		return conn, err
	}
	var conn net.Conn
	if ns := sb.NetNSPath(); ns == "" {
		conn, err = dial()
	} else {
		err = inNamespaces(map[string]string{netNS.name: ns}, func() error {
			// The socket is made here, so it belongs to the pod's
			// network namespace for good.
			var err error
			conn, err = dial()
			return err
		})
	}
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("nothing listens on port %d in pod sandbox %s: %w", port, sb.ID, errdefs.ErrFailedPrecondition)
		}
		return nil, fmt.Errorf("connect to port %d in pod sandbox %s: %w", port, sb.ID, err)
	}
	return conn, nil
}
