//go:build !linux

package diskspace

import (
	"errors"
	"fmt"
)

// Stat is not implemented off Linux: it returns an error wrapping
// errors.ErrUnsupported.
func Stat(string) (Usage, error) {
	return Usage{}, fmt.Errorf("statfs: only supported on linux: %w", errors.ErrUnsupported)
}
