//go:build !linux

package collect

import "os"

// readFull reads the whole file at path into *buf (portable fallback).
func readFull(path string, buf *[]byte) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	*buf = b
	return len(b), nil
}

// keptFd keeps nothing outside Linux: every read opens the file.
type keptFd struct{}

func (keptFd) readFull(path string, buf *[]byte) (int, error) { return readFull(path, buf) }
