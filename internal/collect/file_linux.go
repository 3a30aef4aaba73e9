package collect

import (
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// readFull reads the whole file at path into *buf, growing it when the file
// does not fit, and returns the byte count. It uses raw syscalls so that
// re-reading a /proc file does not allocate.
func readFull(path string, buf *[]byte) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer unix.Close(fd)
	n, err := readFd(fd, buf, false)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	return n, nil
}

// keptFd is a descriptor kept open between reads of one file.
type keptFd struct {
	fd   int
	open bool
}

// readFull reads the whole file at path into *buf like the function
// readFull, through the kept descriptor: it seeks it back to the start and
// reads to the end, opening it on the first call. A descriptor that fails
// is closed and the file opened afresh, once per call.
func (k *keptFd) readFull(path string, buf *[]byte) (int, error) {
	if k.open {
		if _, err := unix.Seek(k.fd, 0, io.SeekStart); err == nil {
			if n, err := readFd(k.fd, buf, false); err == nil {
				return n, nil
			}
		}
		unix.Close(k.fd)
		k.open = false
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	n, err := readFd(fd, buf, false)
	if err != nil {
		unix.Close(fd)
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	k.fd, k.open = fd, true
	return n, nil
}

// readFd reads fd to its end into *buf, growing it when the file does not
// fit, and returns the byte count. With shortReadIsEnd, a read that does not
// fill the buffer is taken as the end: procfs produces small files like stat
// in one read, which saves the final empty read.
func readFd(fd int, buf *[]byte, shortReadIsEnd bool) (int, error) {
	if len(*buf) == 0 {
		*buf = make([]byte, 4096)
	}
	n := 0
	for {
		if n == len(*buf) {
			grown := make([]byte, 2*len(*buf))
			copy(grown, *buf)
			*buf = grown
		}
		m, err := unix.Read(fd, (*buf)[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if m == 0 {
			return n, nil
		}
		n += m
		if shortReadIsEnd && n < len(*buf) {
			return n, nil
		}
	}
}
