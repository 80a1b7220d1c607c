// Package errdefs holds Berth's error kinds. Packages below server/ mark
// their errors with a kind (errdefs.NotFound(err), errdefs.Invalidf(...));
// one gRPC interceptor in server/ maps the kind to a status code. No package
// below server/ imports gRPC's status package.
//
// The kinds are wrappers, so errors.Is / errors.As and %w chains keep working:
// fmt.Errorf("pod %s: %w", id, errdefs.NotFound(err)) is still a NotFound.
package errdefs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// Kind is what a caller can do about an error.
type Kind int

const (
	KindUnknown            Kind = iota
	KindInvalid                 // bad or missing input: InvalidArgument
	KindNotFound                // unknown id or name: NotFound
	KindAlreadyExists           // name reserved: AlreadyExists
	KindFailedPrecondition      // valid request, wrong state: FailedPrecondition
	KindUnavailable             // a dependency is down (registry, CNI): Unavailable
	KindUnauthenticated         // bad credentials: Unauthenticated
	KindPermissionDenied        // refused by policy: PermissionDenied
	KindDeadlineExceeded        // a deadline passed: DeadlineExceeded
	KindCanceled                // the caller went away: Canceled
	KindUnimplemented           // not built: Unimplemented
	KindResourceExhausted       // out of space, too many: ResourceExhausted
	KindInternal                // a bug (a recovered panic): Internal
)

var kindNames = map[Kind]string{
	KindUnknown:            "unknown",
	KindInvalid:            "invalid",
	KindNotFound:           "not found",
	KindAlreadyExists:      "already exists",
	KindFailedPrecondition: "failed precondition",
	KindUnavailable:        "unavailable",
	KindUnauthenticated:    "unauthenticated",
	KindPermissionDenied:   "permission denied",
	KindDeadlineExceeded:   "deadline exceeded",
	KindCanceled:           "canceled",
	KindUnimplemented:      "unimplemented",
	KindResourceExhausted:  "resource exhausted",
	KindInternal:           "internal",
}

func (k Kind) String() string { return kindNames[k] }

type kindError struct {
	kind Kind
	err  error
}

func (e *kindError) Error() string { return e.err.Error() }
func (e *kindError) Unwrap() error { return e.err }

// Mark wraps err with kind. A nil err stays nil.
func Mark(kind Kind, err error) error {
	if err == nil {
		return nil
	}
	return &kindError{kind: kind, err: err}
}

// KindOf returns the outermost kind in err's chain. Context errors found
// anywhere in the chain count as DeadlineExceeded / Canceled when nothing
// more specific was marked.
func KindOf(err error) Kind {
	if err == nil {
		return KindUnknown
	}
	var ke *kindError
	if errors.As(err, &ke) {
		return ke.kind
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return KindDeadlineExceeded
	case errors.Is(err, context.Canceled):
		return KindCanceled
	case isNoSpace(err):
		return KindResourceExhausted
	}
	return KindUnknown
}

// isNoSpace reports a full filesystem or an exhausted quota (of blocks or
// inodes). Some libraries (the image copy, the store's layer
// application) pass the error on as text only, so its text counts too.
func isNoSpace(err error) bool {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, syscall.ENOSPC.Error()) || strings.Contains(msg, syscall.EDQUOT.Error())
}

// Is reports whether err is marked with kind.
func Is(err error, kind Kind) bool { return err != nil && KindOf(err) == kind }

func NotFound(err error) error           { return Mark(KindNotFound, err) }
func Invalid(err error) error            { return Mark(KindInvalid, err) }
func AlreadyExists(err error) error      { return Mark(KindAlreadyExists, err) }
func FailedPrecondition(err error) error { return Mark(KindFailedPrecondition, err) }
func Unavailable(err error) error        { return Mark(KindUnavailable, err) }
func Unauthenticated(err error) error    { return Mark(KindUnauthenticated, err) }
func PermissionDenied(err error) error   { return Mark(KindPermissionDenied, err) }
func Unimplemented(err error) error      { return Mark(KindUnimplemented, err) }
func ResourceExhausted(err error) error  { return Mark(KindResourceExhausted, err) }
func Internal(err error) error           { return Mark(KindInternal, err) }

func NotFoundf(format string, a ...any) error {
	return NotFound(fmt.Errorf(format, a...))
}
func Invalidf(format string, a ...any) error {
	return Invalid(fmt.Errorf(format, a...))
}
func AlreadyExistsf(format string, a ...any) error {
	return AlreadyExists(fmt.Errorf(format, a...))
}
func FailedPreconditionf(format string, a ...any) error {
	return FailedPrecondition(fmt.Errorf(format, a...))
}
func Unavailablef(format string, a ...any) error {
	return Unavailable(fmt.Errorf(format, a...))
}
func Unimplementedf(format string, a ...any) error {
	return Unimplemented(fmt.Errorf(format, a...))
}

func IsNotFound(err error) bool      { return Is(err, KindNotFound) }
func IsInvalid(err error) bool       { return Is(err, KindInvalid) }
func IsAlreadyExists(err error) bool { return Is(err, KindAlreadyExists) }
