//go:build !linux

package collect

import (
	"os"
	"time"
)

// pidCounter counts the process directories of a proc root (portable
// fallback: a listing every time).
type pidCounter struct{ path string }

func (c *pidCounter) count(time.Time) (int, error) {
	entries, err := os.ReadDir(c.path)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if e.IsDir() && isPID([]byte(e.Name())) {
			n++
		}
	}
	return n, nil
}
