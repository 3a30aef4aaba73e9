package store

import (
	"bytes"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/sysmonstm/sysmonstm/internal/procmaps"
)

const mappedSupported = true

// pageOutMapped pages out, or only unmaps, every shared read-only mapping
// of a file as advice says for its path (see mappedPages). A mapping that
// disappeared since /proc/self/maps was read is skipped.
func pageOutMapped(advice func(path []byte) mappedAdvice) error {
	return procmaps.Self(func(m procmaps.Mapping) error {
		path, ok := sharedFile(m)
		if !ok {
			return nil
		}
		name, advise := "MADV_PAGEOUT", unix.MADV_PAGEOUT
		switch advice(path) {
		case leaveMapped:
			return nil
		case unmapPages:
			name, advise = "MADV_DONTNEED", unix.MADV_DONTNEED
		}
		_, _, errno := unix.Syscall(unix.SYS_MADVISE, m.Lo, m.Hi-m.Lo, uintptr(advise))
		switch errno {
		case 0, unix.ENOMEM, unix.EAGAIN:
			return nil
		case unix.EINVAL:
			if advise == unix.MADV_PAGEOUT {
				return fmt.Errorf("madvise(%s): %w (Linux 5.4 or later needed)", name, errno)
			}
			return fmt.Errorf("madvise(%s): %w", name, errno)
		default:
			return fmt.Errorf("madvise(%s): %w", name, errno)
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
