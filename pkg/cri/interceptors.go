package cri

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The interceptors do the work every RPC shares, outermost first:
// logging (request ID, fields, duration, final code) → the disk reserve
// (calls that free space retry on a full disk) → status (domain error to
// gRPC code, once) → recovery (a panic becomes Internal) → validation.
func unaryInterceptors(log *slog.Logger, obs Observer, reserve DiskReserve) grpc.ServerOption {
	return grpc.ChainUnaryInterceptor(unaryLogging(log, obs), unaryReserve(reserve), unaryStatus, unaryRecovery, unaryValidation)
}

func streamInterceptors(log *slog.Logger, obs Observer) grpc.ServerOption {
	return grpc.ChainStreamInterceptor(streamLogging(log, obs), streamStatus, streamRecovery, streamValidation)
}

// Observer is told of every finished call (metrics.Metrics).
type Observer interface {
	ObserveRPC(fullMethod string, code codes.Code, d time.Duration)
}

type loggerKey struct{}

// loggerFrom returns the request's logger (with its request ID and object
// fields), or fallback outside an RPC.
func loggerFrom(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return fallback
}

func newRequestID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// requestLogger names the RPC and the objects it is about.
func requestLogger(base *slog.Logger, fullMethod string, req any) *slog.Logger {
	l := base.With("rpc", path.Base(fullMethod), "request_id", newRequestID())
	if r, ok := req.(interface{ GetPodSandboxId() string }); ok && r.GetPodSandboxId() != "" {
		l = l.With("pod", r.GetPodSandboxId())
	}
	if r, ok := req.(interface{ GetContainerId() string }); ok && r.GetContainerId() != "" {
		l = l.With("container", r.GetContainerId())
	}
	return l
}

// quietRPC reports the read-only RPCs the kubelet calls constantly; they are
// logged at debug so that info shows what changed on the node.
func quietRPC(fullMethod string) bool {
	m := path.Base(fullMethod)
	return m == "Version" || m == "Status" || m == "ImageFsInfo" || m == "RuntimeConfig" ||
		strings.HasPrefix(m, "List") || strings.HasPrefix(m, "Stream") ||
		strings.HasSuffix(m, "Status") || strings.HasSuffix(m, "Stats") || m == "GetContainerEvents"
}

func logResult(ctx context.Context, l *slog.Logger, obs Observer, fullMethod string, start time.Time, err error) {
	if obs != nil {
		obs.ObserveRPC(fullMethod, status.Code(err), time.Since(start))
	}
	level := slog.LevelInfo
	if quietRPC(fullMethod) {
		level = slog.LevelDebug
	}
	code := status.Code(err)
	switch code {
	case codes.OK:
		l.Log(ctx, level, "rpc done", "duration", time.Since(start))
	case codes.Internal, codes.Unknown, codes.DataLoss:
		l.Log(ctx, slog.LevelError, "rpc failed", "duration", time.Since(start), "code", code.String(), "err", err)
	default:
		l.Log(ctx, max(level, slog.LevelInfo), "rpc failed", "duration", time.Since(start), "code", code.String(), "err", status.Convert(err).Message())
	}
}

func unaryLogging(base *slog.Logger, obs Observer) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		l := requestLogger(base, info.FullMethod, req)
		ctx = context.WithValue(ctx, loggerKey{}, l)
		resp, err := handler(ctx, req)
		logResult(ctx, l, obs, info.FullMethod, start, err)
		return resp, err
	}
}

func unaryStatus(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	return resp, toStatus(err)
}

func unaryRecovery(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panicked(ctx, info.FullMethod, p)
		}
	}()
	return handler(ctx, req)
}

func unaryValidation(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := validateRequest(req); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// panicked logs a handler's panic with its stack and returns the Internal
// error the client sees; the daemon goes on serving.
func panicked(ctx context.Context, fullMethod string, p any) error {
	loggerFrom(ctx, slog.Default()).Error("panic in rpc handler", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	return status.Errorf(codes.Internal, "internal error in %s: %v (details in the daemon log)", path.Base(fullMethod), p)
}

// serverStream lets interceptors replace a stream's context and see the
// request message.
type serverStream struct {
	grpc.ServerStream
	ctx context.Context
	// onRecv is called with the first message received (the request of a
	// server-streaming RPC) and may reject it.
	onRecv func(any) error
}

func (s *serverStream) Context() context.Context { return s.ctx }

func (s *serverStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if s.onRecv != nil {
		f := s.onRecv
		s.onRecv = nil
		return f(m)
	}
	return nil
}

func streamLogging(base *slog.Logger, obs Observer) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		l := requestLogger(base, info.FullMethod, nil)
		ctx := context.WithValue(ss.Context(), loggerKey{}, l)
		err := handler(srv, &serverStream{ServerStream: ss, ctx: ctx})
		logResult(ctx, l, obs, info.FullMethod, start, err)
		return err
	}
}

func streamStatus(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return toStatus(handler(srv, ss))
}

func streamRecovery(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panicked(ss.Context(), info.FullMethod, p)
		}
	}()
	return handler(srv, ss)
}

func streamValidation(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &serverStream{ServerStream: ss, ctx: ss.Context(), onRecv: validateRequest})
}
