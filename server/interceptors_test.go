package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/berth-cri/berth/errdefs"
)

func TestErrorKindsMapToCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{errdefs.NotFoundf("pod %s", "x"), codes.NotFound},
		{fmt.Errorf("wrapped: %w", errdefs.Invalidf("bad")), codes.InvalidArgument},
		{errdefs.AlreadyExistsf("name"), codes.AlreadyExists},
		{errdefs.Unavailablef("registry down"), codes.Unavailable},
		{fmt.Errorf("pull: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{fmt.Errorf("pull: %w", context.Canceled), codes.Canceled},
		{status.Error(codes.Aborted, "as is"), codes.Aborted},
		{errors.New("plain"), codes.Unknown},
	} {
		if got := status.Code(toStatus(tc.err)); got != tc.want {
			t.Errorf("%v: code %v, want %v", tc.err, got, tc.want)
		}
	}
	if toStatus(nil) != nil {
		t.Error("nil error became a status")
	}
}

func TestPanicBecomesInternal(t *testing.T) {
	unary, _ := Interceptors(nil)
	_, err := unary(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/runtime.v1.RuntimeService/Version"},
		func(ctx context.Context, req any) (any, error) { panic("boom") })
	if status.Code(err) != codes.Internal {
		t.Fatalf("panic: %v, want Internal", err)
	}
}

// Every errdefs kind has its own code: a kind added without a row here,
// or dropped from kindCodes, fails.
func TestEveryErrorKindHasItsCode(t *testing.T) {
	want := map[errdefs.Kind]codes.Code{
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
	kinds := 0
	for k := errdefs.KindUnknown + 1; k.String() != ""; k++ {
		kinds++
		code, ok := want[k]
		if !ok {
			t.Errorf("kind %d (%v) has no expected code in this test", k, k)
			continue
		}
		err := fmt.Errorf("outer: %w", errdefs.Mark(k, errors.New("inner")))
		st := toStatus(err)
		if got := status.Code(st); got != code {
			t.Errorf("kind %v: code %v, want %v", k, got, code)
		}
		if !strings.Contains(st.Error(), "outer: inner") {
			t.Errorf("kind %v: message lost: %v", k, st)
		}
	}
	if kinds != len(want) {
		t.Errorf("errdefs has %d kinds, the table %d", kinds, len(want))
	}
	if got := status.Code(toStatus(errdefs.Mark(errdefs.KindUnknown, errors.New("x")))); got != codes.Unknown {
		t.Errorf("unknown kind: %v", got)
	}
}
