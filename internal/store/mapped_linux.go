package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

const mappedSupported = true

// pageOutMapped pages out every shared read-only mapping of a file whose
// path match accepts (see mappedPages). A mapping that disappeared since
// /proc/self/maps was read is skipped.
func pageOutMapped(match func(path []byte) bool) error {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		start, end, path, ok := sharedMapping(sc.Bytes())
		if !ok || !match(path) {
			continue
		}
		_, _, errno := unix.Syscall(unix.SYS_MADVISE, start, end-start, unix.MADV_PAGEOUT)
		switch errno {
		case 0, unix.ENOMEM, unix.EAGAIN:
		case unix.EINVAL:
			return fmt.Errorf("madvise(MADV_PAGEOUT): %w (Linux 5.4 or later needed)", errno)
		default:
			return fmt.Errorf("madvise(MADV_PAGEOUT): %w", errno)
		}
	}
	return sc.Err()
}

// sharedMapping parses one line of /proc/self/maps ("start-end perms
// offset dev inode path") and reports the range and file of a shared
// read-only mapping.
func sharedMapping(line []byte) (start, end uintptr, path []byte, ok bool) {
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 || len(line) < sp+5 || string(line[sp+1:sp+5]) != "r--s" {
		return 0, 0, nil, false
	}
	slash := bytes.IndexByte(line[sp:], '/')
	if slash < 0 {
		return 0, 0, nil, false
	}
	path = bytes.TrimSuffix(line[sp+slash:], []byte(" (deleted)"))
	addr := line[:sp]
	dash := bytes.IndexByte(addr, '-')
	if dash < 0 {
		return 0, 0, nil, false
	}
	s, err1 := strconv.ParseUint(string(addr[:dash]), 16, 64)
	e, err2 := strconv.ParseUint(string(addr[dash+1:]), 16, 64)
	if err := errors.Join(err1, err2); err != nil || e <= s {
		return 0, 0, nil, false
	}
	return uintptr(s), uintptr(e), path, true
}
