package monitor

// wrapError is fmt.Errorf("<msg>: %w", err) without fmt, which the
// monitor does not link (see wire.go).
type wrapError struct {
	msg string
	err error
}

func (e *wrapError) Error() string { return e.msg + ": " + e.err.Error() }
func (e *wrapError) Unwrap() error { return e.err }

// wrap prefixes err with the concatenation of msg.
func wrap(err error, msg ...string) error {
	s := ""
	for _, m := range msg {
		s += m
	}
	return &wrapError{msg: s, err: err}
}

// errString is err's text, or "<nil>".
func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
