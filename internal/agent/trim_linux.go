package agent

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
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
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("trim executable pages: %w", err)
	}
	total := 0
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		lo, hi, ok := readOnlyMapping(sc.Bytes(), exe)
		if !ok {
			continue
		}
		// The range is one whole mapping of the process: mapped and page
		// aligned.
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, lo, hi-lo, unix.MADV_DONTNEED); e != 0 {
			return total, fmt.Errorf("trim executable pages: madvise %x-%x: %w", lo, hi, e)
		}
		total += int(hi - lo)
	}
	return total, nil
}

// readOnlyMapping parses one line of /proc/PID/maps and returns its address
// range when it maps file exe private and without write permission.
func readOnlyMapping(line []byte, exe string) (lo, hi uintptr, ok bool) {
	// 00400000-00a46000 r-xp 00000000 fe:00 9978093    /usr/bin/sysmonstm
	rng, rest := nextWord(line)
	perms, rest := nextWord(rest)
	_, rest = nextWord(rest) // offset
	_, rest = nextWord(rest) // device
	_, rest = nextWord(rest) // inode
	path := bytes.TrimLeft(rest, " \t")
	if len(perms) != 4 || perms[0] != 'r' || perms[1] != '-' || perms[3] != 'p' || string(path) != exe {
		return 0, 0, false
	}
	i := bytes.IndexByte(rng, '-')
	if i < 0 {
		return 0, 0, false
	}
	l, err1 := strconv.ParseUint(string(rng[:i]), 16, 64)
	h, err2 := strconv.ParseUint(string(rng[i+1:]), 16, 64)
	if err1 != nil || err2 != nil || h <= l {
		return 0, 0, false
	}
	return uintptr(l), uintptr(h), true
}

// nextWord splits off the first space-separated word of b.
func nextWord(b []byte) (word, rest []byte) {
	b = bytes.TrimLeft(b, " \t")
	if i := bytes.IndexAny(b, " \t"); i >= 0 {
		return b[:i], b[i:]
	}
	return b, nil
}
