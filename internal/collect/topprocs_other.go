//go:build !linux

package collect

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
)

// procDir is a procfs directory (portable fallback).
type procDir struct{ path string }

func openProcDir(path string) (procDir, error) {
	if _, err := os.Stat(path); err != nil {
		return procDir{}, err
	}
	return procDir{path: path}, nil
}

func (procDir) close() {}

func (procDir) rewind() error { return nil }

// pids appends the process ids (numeric directory names) to dst.
func (d procDir) pids(_ *[]byte, dst []uint32) ([]uint32, error) {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return dst, err
	}
	for _, e := range entries {
		if v, ok := parseUint([]byte(e.Name())); ok && e.IsDir() && v > 0 && v <= 1<<32-1 {
			dst = append(dst, uint32(v))
		}
	}
	return dst, nil
}

// read reads the file at rel (relative, NUL-terminated) into *buf.
func (d procDir) read(rel []byte, buf *[]byte) (int, error) {
	b, err := os.ReadFile(filepath.Join(d.path, string(bytes.TrimSuffix(rel, []byte{0}))))
	if err != nil {
		return 0, err
	}
	*buf = b
	return len(b), nil
}

// openRead reads rel; without pread support nothing stays open (fd -1).
func (d procDir) openRead(rel []byte, buf *[]byte) (n, fd int, err error) {
	n, err = d.read(rel, buf)
	return n, -1, err
}

func preadFd(int, *[]byte) (int, error) { return 0, errors.ErrUnsupported }

func closeFd(int) {}

func maxStatFDs() int { return 0 }
