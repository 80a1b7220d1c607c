package errdefs

import (
	"fmt"
	"runtime/debug"
)

// PanicError is a panic recovered in a goroutine that serves a request
// outside the gRPC handler (which the interceptor guards): the panic value
// and the stack where it happened, for the log line.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("internal error (panic: %v)", e.Value) }

// Recovered turns a value recover() returned into an Internal error that
// carries the stack. Call it in the deferred function itself, so the stack
// is the panicking goroutine's.
func Recovered(r any) error {
	return Internal(&PanicError{Value: r, Stack: debug.Stack()})
}
