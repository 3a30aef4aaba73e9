package agent

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/sysmonstm/sysmonstm/internal/procmaps"
)

// TrimExecutablePages drops this process's mappings of its executable's
// read-only pages (code, read-only data, symbol tables), which is most of a
// Go agent's RSS: package initialisers touch code and tables all over the
// binary at start, and the kernel maps 16 pages around each page fault
// (fault-around), so after start nearly the whole binary is mapped although
// a tick uses a fraction of it. The pages stay in the page cache; those the
// process still uses fault back in (a minor fault each) on their next use.
// Writable mappings are never touched (madvise(MADV_DONTNEED) would lose
// their contents). It returns the bytes of the mappings advised.
func TrimExecutablePages() (int, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, fmt.Errorf("trim executable pages: %w", err)
	}
	total := 0
	err = procmaps.Self(func(m procmaps.Mapping) error {
		if !readOnlyMapping(m, exe) {
			return nil
		}
		// The range is one whole mapping of the process: mapped and page
		// aligned.
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, m.Lo, m.Hi-m.Lo, unix.MADV_DONTNEED); e != 0 {
			return fmt.Errorf("madvise %x-%x: %w", m.Lo, m.Hi, e)
		}
		total += int(m.Hi - m.Lo)
		return nil
	})
	if err != nil {
		return total, fmt.Errorf("trim executable pages: %w", err)
	}
	return total, nil
}

// readOnlyMapping reports whether m maps file exe private and without
// write permission.
func readOnlyMapping(m procmaps.Mapping, exe string) bool {
	return m.Perms[0] == 'r' && m.Perms[1] == '-' && m.Perms[3] == 'p' && string(m.Path) == exe
}
