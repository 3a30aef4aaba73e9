package collect

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// countPIDs counts the process directories of procPath with getdents into a
// reused buffer: os.ReadDir would allocate a string per entry every tick.
func countPIDs(procPath string, buf *[]byte) (int, error) {
	fd, err := unix.Open(procPath, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", procPath, err)
	}
	defer unix.Close(fd)
	if *buf == nil {
		*buf = make([]byte, 32<<10)
	}
	count := 0
	for {
		n, err := unix.Getdents(fd, *buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("read dir %s: %w", procPath, err)
		}
		if n <= 0 {
			return count, nil
		}
		count += countDirents((*buf)[:n])
	}
}

// countDirents counts the entries of a getdents64 buffer that are
// directories (or of unknown type) named by a number.
func countDirents(b []byte) int {
	count := 0
	walkPIDDirents(b, func(uint32) { count++ })
	return count
}

// walkPIDDirents calls fn with the number of each entry of a getdents64
// buffer that is a directory (or of unknown type) named by a number that
// fits a pid.
func walkPIDDirents(b []byte, fn func(pid uint32)) {
	var d unix.Dirent
	nameOff := int(unsafe.Offsetof(d.Name))
	for len(b) >= nameOff {
		reclen := int(binary.NativeEndian.Uint16(b[unsafe.Offsetof(d.Reclen):]))
		if reclen < nameOff || reclen > len(b) {
			return
		}
		typ := b[unsafe.Offsetof(d.Type)]
		name := b[nameOff:reclen]
		for i, c := range name {
			if c == 0 {
				name = name[:i]
				break
			}
		}
		if typ == unix.DT_DIR || typ == unix.DT_UNKNOWN {
			if v, ok := parseUint(name); ok && v > 0 && v <= 1<<32-1 {
				fn(uint32(v))
			}
		}
		b = b[reclen:]
	}
}
