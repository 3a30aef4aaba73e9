package alert

import (
	"errors"
	"fmt"
)

// The engine's errors come in three kinds, which the alerting API answers
// with 400, 404 and 409: a *FieldError (the input is invalid), one
// matching ErrNotFound, and one matching ErrConflict (the request is valid
// but the current state refuses it). Any other error is the engine's own
// failure (database).
var (
	// ErrNotFound matches every "… not found" error.
	ErrNotFound = errors.New("not found")
	// ErrConflict matches the errors of requests the current state
	// refuses: a taken id, a provisioned item, a resolved alert.
	ErrConflict = errors.New("conflict")
)

type notFoundError struct{ msg string }

func (n *notFoundError) Error() string        { return n.msg + " not found" }
func (n *notFoundError) Is(target error) bool { return target == ErrNotFound }

// notFound returns an error matching ErrNotFound: `rule "x" not found`.
func notFound(format string, args ...any) error {
	return &notFoundError{msg: fmt.Sprintf(format, args...)}
}

// conflictError is an error matching ErrConflict; its text is the message
// alone.
type conflictError struct{ msg string }

func (c *conflictError) Error() string        { return c.msg }
func (c *conflictError) Is(target error) bool { return target == ErrConflict }

func conflict(format string, args ...any) error {
	return &conflictError{msg: fmt.Sprintf(format, args...)}
}
