//go:build !linux

package collect

import "errors"

// statfs is not implemented off Linux; the filesystem collector then reports
// nothing but this error.
func statfs(string) (FSUsage, error) {
	return FSUsage{}, errors.New("statfs: only supported on linux")
}
