//go:build !linux

package store

import (
	"errors"
	"fmt"
)

// statfs is not implemented off Linux; the free-space guard is then off.
func statfs(string) (Space, error) {
	return Space{}, fmt.Errorf("statfs: only supported on linux: %w", errors.ErrUnsupported)
}
