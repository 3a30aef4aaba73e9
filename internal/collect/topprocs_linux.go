package collect

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// procDir is an open procfs directory. Reading PID/file relative to it with
// raw openat/read/close into a reused buffer costs three syscalls and no
// allocation per file, which matters at thousands of processes.
type procDir struct {
	fd   int
	path string
}

func openProcDir(path string) (procDir, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return procDir{fd: -1}, fmt.Errorf("open %s: %w", path, err)
	}
	return procDir{fd: fd, path: path}, nil
}

func (d procDir) close() { _ = unix.Close(d.fd) }

// pids appends the process ids (numeric directory names) to dst, reading
// the directory with getdents into a reused buffer.
func (d procDir) pids(buf *[]byte, dst []uint32) ([]uint32, error) {
	if *buf == nil {
		*buf = make([]byte, 32<<10)
	}
	for {
		n, err := unix.Getdents(d.fd, *buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return dst, fmt.Errorf("read dir %s: %w", d.path, err)
		}
		if n <= 0 {
			return dst, nil
		}
		dst = appendDirentPIDs(dst, (*buf)[:n])
	}
}

// read reads the file at rel (relative, NUL-terminated) into *buf, growing
// it when the file does not fit, and returns the byte count. A read that
// does not fill the buffer is taken as the whole file: procfs produces
// small files like stat in one read.
func (d procDir) read(rel []byte, buf *[]byte) (int, error) {
	r, _, errno := unix.Syscall6(unix.SYS_OPENAT, uintptr(d.fd), uintptr(unsafe.Pointer(&rel[0])),
		uintptr(unix.O_RDONLY|unix.O_CLOEXEC), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	fd := int(r)
	defer unix.Close(fd)
	return readFd(fd, buf, true)
}

// appendDirentPIDs appends the numeric directory names of a getdents64
// buffer to dst.
func appendDirentPIDs(dst []uint32, b []byte) []uint32 {
	walkPIDDirents(b, func(pid uint32) { dst = append(dst, pid) })
	return dst
}
