package alert

import (
	"errors"
	"fmt"
)

// errNotFound matches every "… not found" error (answered with 404).
var errNotFound = errors.New("not found")

type notFoundError struct{ msg string }

func (n *notFoundError) Error() string        { return n.msg + " not found" }
func (n *notFoundError) Is(target error) bool { return target == errNotFound }

// notFound returns an error matching errNotFound: `rule "x" not found`.
func notFound(format string, args ...any) error {
	return &notFoundError{msg: fmt.Sprintf(format, args...)}
}

// conflictError marks API errors answered with 409.
type conflictError struct{ msg string }

func (c *conflictError) Error() string { return c.msg }

func conflict(format string, args ...any) error {
	return &conflictError{msg: fmt.Sprintf(format, args...)}
}
