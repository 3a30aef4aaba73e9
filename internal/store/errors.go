package store

import "fmt"

// QueryError is a query the caller got wrong (no metric, a range too large
// for its step, …), as opposed to a storage failure. It implements the
// ClientError() marker the HTTP layer maps to 400.
type QueryError struct{ msg string }

func (e *QueryError) Error() string { return e.msg }

// ClientError reports that the caller, not the store, is at fault.
func (e *QueryError) ClientError() bool { return true }

func queryError(msg string) error { return &QueryError{msg: msg} }

func queryErrorf(format string, args ...any) error {
	return &QueryError{msg: fmt.Sprintf(format, args...)}
}
