package server

import (
	"context"
	"errors"
	"fmt"
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
