package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/steptrace"
)

// PanicHookEnv names an RPC (its full method, or its short name) that
// panics on purpose, so tests can prove a panicking handler answers
// Internal and the daemon keeps serving. Ignored when unset.
const PanicHookEnv = "BERTH_TEST_PANIC_RPC"

// Interceptors returns the unary and stream interceptors berthd installs:
// panic recovery, error-kind mapping, one log line per RPC and metrics.
func Interceptors(m *Metrics) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	panicRPC := os.Getenv(PanicHookEnv)
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		start := time.Now()
		ctx, trace := steptrace.Start(ctx, shortMethod(info.FullMethod), m)
		defer func() {
			if r := recover(); r != nil {
				logrus.WithField("method", info.FullMethod).Errorf("panic: %v\n%s", r, debug.Stack())
				resp, err = nil, status.Errorf(codes.Internal, "%s: internal error (panic: %v)", shortMethod(info.FullMethod), r)
			}
			code := status.Code(err)
			m.observe(info.FullMethod, code, time.Since(start))
			logRPC(info.FullMethod, req, code, err, time.Since(start))
			logSteps(info.FullMethod, trace)
		}()
		if panicRPC != "" && (panicRPC == info.FullMethod || panicRPC == shortMethod(info.FullMethod)) {
			panic("test hook " + PanicHookEnv)
		}
		if logrus.IsLevelEnabled(logrus.DebugLevel) {
			logrus.WithField("method", info.FullMethod).Debugf("request: %v", redactSecrets(req))
		}
		resp, err = handler(ctx, req)
		return resp, toStatus(err)
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		start := time.Now()
		defer func() {
			if r := recover(); r != nil {
				logrus.WithField("method", info.FullMethod).Errorf("panic: %v\n%s", r, debug.Stack())
				err = status.Errorf(codes.Internal, "%s: internal error (panic: %v)", shortMethod(info.FullMethod), r)
			}
			code := status.Code(err)
			m.observe(info.FullMethod, code, time.Since(start))
			logRPC(info.FullMethod, nil, code, err, time.Since(start))
		}()
		return toStatus(handler(srv, ss))
	}
	return unary, stream
}

// toStatus maps an error's errdefs kind to a gRPC status. Errors that
// already are statuses pass through.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codeOf(err), err.Error())
}

// kindCodes maps each errdefs kind to its gRPC code.
var kindCodes = map[errdefs.Kind]codes.Code{
	errdefs.KindInvalid:            codes.InvalidArgument,
	errdefs.KindNotFound:           codes.NotFound,
	errdefs.KindAlreadyExists:      codes.AlreadyExists,
	errdefs.KindFailedPrecondition: codes.FailedPrecondition,
	errdefs.KindUnavailable:        codes.Unavailable,
	errdefs.KindUnauthenticated:    codes.Unauthenticated,
	errdefs.KindPermissionDenied:   codes.PermissionDenied,
	errdefs.KindDeadlineExceeded:   codes.DeadlineExceeded,
	errdefs.KindCanceled:           codes.Canceled,
	errdefs.KindUnimplemented:      codes.Unimplemented,
	errdefs.KindResourceExhausted:  codes.ResourceExhausted,
	errdefs.KindInternal:           codes.Internal,
}

func codeOf(err error) codes.Code {
	if c, ok := kindCodes[errdefs.KindOf(err)]; ok {
		return c
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return se.GRPCStatus().Code()
	}
	return codes.Unknown
}

func shortMethod(full string) string {
	if i := strings.LastIndex(full, "/"); i >= 0 {
		return full[i+1:]
	}
	return full
}

// logRPC writes the one line per RPC: method, duration, code and the ids
// the request names. Frequent read-only RPCs log at debug so a kubelet
// polling every second does not flood the journal.
func logRPC(method string, req any, code codes.Code, err error, d time.Duration) {
	fields := logrus.Fields{"method": shortMethod(method), "duration": d.Round(time.Microsecond).String(), "code": code.String()}
	for k, v := range requestIDs(req) {
		fields[k] = v
	}
	entry := logrus.WithFields(fields)
	switch {
	case err != nil && code != codes.NotFound && code != codes.Canceled:
		entry.Warn(err.Error())
	case isPolling(method):
		entry.Debug("rpc")
	default:
		entry.Info("rpc")
	}
}

func isPolling(method string) bool {
	switch shortMethod(method) {
	case "Version", "Status", "ListPodSandbox", "ListContainers", "PodSandboxStatus",
		"ContainerStatus", "ListImages", "ImageStatus", "ImageFsInfo", "ExecSync",
		"ListContainerStats", "ListPodSandboxStats", "ContainerStats", "PodSandboxStats":
		return true
	}
	return false
}

// requestIDs picks the identifying fields of a request (ids and image
// references) by their proto names, so new RPCs get logged ids for free.
func requestIDs(req any) map[string]string {
	msg, ok := req.(proto.Message)
	if !ok {
		return nil
	}
	out := map[string]string{}
	r := msg.ProtoReflect()
	r.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch name := string(fd.Name()); name {
		case "pod_sandbox_id", "container_id":
			out[name] = v.String()
		case "image":
			if fd.Kind() == protoreflect.MessageKind {
				if img := v.Message().Get(v.Message().Descriptor().Fields().ByName("image")); img.IsValid() {
					out["image"] = img.String()
				}
			}
		case "config":
			if fd.Kind() == protoreflect.MessageKind {
				if md := v.Message().Descriptor().Fields().ByName("metadata"); md != nil {
					if m := v.Message().Get(md).Message(); m.IsValid() {
						if n := m.Descriptor().Fields().ByName("name"); n != nil {
							out["name"] = fmt.Sprint(m.Get(n).Interface())
						}
					}
				}
			}
		}
		return true
	})
	return out
}

// logSteps writes, at debug level, where an operation's time went.
func logSteps(method string, t *steptrace.Trace) {
	if !logrus.IsLevelEnabled(logrus.DebugLevel) || len(t.Steps()) == 0 {
		return
	}
	logrus.WithField("method", shortMethod(method)).Debugf("steps: %s", t)
}
