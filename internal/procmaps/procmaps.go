// Package procmaps reads a Linux process's memory mappings from
// /proc/self/maps: the agent drops its executable's read-only pages from
// them, the store pages out the blocks it compacts.
package procmaps

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
)

// Mapping is one line of /proc/PID/maps.
type Mapping struct {
	Lo, Hi uintptr // the address range, [Lo, Hi)
	Perms  string  // "r-xp": read, write, execute, private or shared
	// Path is the mapped file as the kernel shows it (" (deleted)" at the
	// end of a file removed since), a pseudo name ("[stack]") or empty.
	Path []byte
}

// Parse parses one line, e.g.
//
//	00400000-00a46000 r-xp 00000000 fe:00 9978093    /usr/bin/sysmonstm
//
// It reports false for a line it cannot read or an empty range.
func Parse(line []byte) (Mapping, bool) {
	rng, rest := nextWord(line)
	perms, rest := nextWord(rest)
	_, rest = nextWord(rest) // offset
	_, rest = nextWord(rest) // device
	_, rest = nextWord(rest) // inode
	i := bytes.IndexByte(rng, '-')
	if len(perms) != 4 || i < 0 {
		return Mapping{}, false
	}
	lo, err1 := strconv.ParseUint(string(rng[:i]), 16, 64)
	hi, err2 := strconv.ParseUint(string(rng[i+1:]), 16, 64)
	if err1 != nil || err2 != nil || hi <= lo {
		return Mapping{}, false
	}
	return Mapping{Lo: uintptr(lo), Hi: uintptr(hi), Perms: string(perms), Path: bytes.TrimLeft(rest, " \t")}, true
}

// Self calls fn for each mapping of this process, in address order, and
// stops at the first error fn returns.
func Self(fn func(Mapping) error) error {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		m, ok := Parse(sc.Bytes())
		if !ok {
			continue
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return sc.Err()
}

// nextWord splits off the first space-separated word of b.
func nextWord(b []byte) (word, rest []byte) {
	b = bytes.TrimLeft(b, " \t")
	if i := bytes.IndexAny(b, " \t"); i >= 0 {
		return b[:i], b[i:]
	}
	return b, nil
}
