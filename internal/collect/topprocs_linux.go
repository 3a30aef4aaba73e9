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

// rewind moves the directory back to its start, for the next getdents.
func (d procDir) rewind() error {
	_, err := unix.Seek(d.fd, 0, 0)
	return err
}

// pids appends the process ids (numeric directory names) to dst, reading
// the directory with getdents into a reused buffer.
func (d procDir) pids(buf *[]byte, dst []uint32) ([]uint32, error) {
	if *buf == nil {
		*buf = make([]byte, 64<<10) // ~2,700 pids per getdents
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

// openRead opens rel like read and reads it into *buf, but leaves the file
// open and returns its descriptor, for rereading with preadFd.
func (d procDir) openRead(rel []byte, buf *[]byte) (n, fd int, err error) {
	r, _, errno := unix.Syscall6(unix.SYS_OPENAT, uintptr(d.fd), uintptr(unsafe.Pointer(&rel[0])),
		uintptr(unix.O_RDONLY|unix.O_CLOEXEC), 0, 0, 0)
	if errno != 0 {
		return 0, -1, errno
	}
	fd = int(r)
	n, err = readFd(fd, buf, true)
	if err != nil {
		_ = unix.Close(fd)
		return 0, -1, err
	}
	return n, fd, nil
}

// preadFd rereads a file opened by openRead from its start: one system
// call. procfs regenerates the contents on a read at offset 0; a process
// that has exited answers ESRCH (its pid may since belong to another
// process, which the descriptor never reaches).
//
// It is a raw system call: a scan makes one per process, thousands in a
// row, and reading a small procfs file never blocks long enough to be worth
// handing the scheduler its processor (entersyscall and exitsyscall cost
// about a tenth of the call on this path).
func preadFd(fd int, buf *[]byte) (int, error) {
	for {
		b := *buf
		r, _, errno := unix.RawSyscall6(unix.SYS_PREAD64, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		n := int(r)
		if n == len(b) { // did not fit: grow and read whole
			*buf = make([]byte, 2*len(b))
			continue
		}
		return n, nil
	}
}

func closeFd(fd int) { _ = unix.Close(fd) }

// maxStatFDs bounds the /proc/PID/stat descriptors TopProcesses keeps open
// between scans: a quarter of the open-file limit, at most 8192.
func maxStatFDs() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return int(min(rl.Cur/4, 8192))
}

// appendDirentPIDs appends the numeric directory names of a getdents64
// buffer to dst.
func appendDirentPIDs(dst []uint32, b []byte) []uint32 {
	walkPIDDirents(b, func(pid uint32) { dst = append(dst, pid) })
	return dst
}
