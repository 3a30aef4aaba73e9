package store

import (
	"bytes"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/sysmonstm/sysmonstm/internal/procmaps"
)

const mappedSupported = true

// pageOutMapped pages out every shared read-only mapping of a file whose
// path match accepts (see mappedPages). A mapping that disappeared since
// /proc/self/maps was read is skipped.
func pageOutMapped(match func(path []byte) bool) error {
	return procmaps.Self(func(m procmaps.Mapping) error {
		path, ok := sharedFile(m)
		if !ok || !match(path) {
			return nil
		}
		_, _, errno := unix.Syscall(unix.SYS_MADVISE, m.Lo, m.Hi-m.Lo, unix.MADV_PAGEOUT)
		switch errno {
		case 0, unix.ENOMEM, unix.EAGAIN:
			return nil
		case unix.EINVAL:
			return fmt.Errorf("madvise(MADV_PAGEOUT): %w (Linux 5.4 or later needed)", errno)
		default:
			return fmt.Errorf("madvise(MADV_PAGEOUT): %w", errno)
		}
	})
}

// sharedFile reports the file of a shared read-only mapping of a file.
func sharedFile(m procmaps.Mapping) (path []byte, ok bool) {
	if m.Perms != "r--s" || len(m.Path) == 0 || m.Path[0] != '/' {
		return nil, false
	}
	return bytes.TrimSuffix(m.Path, []byte(" (deleted)")), true
}
