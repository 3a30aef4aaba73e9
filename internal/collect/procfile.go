package collect

import (
	"bytes"
	"errors"
)

// procFile reads one small kernel file into a buffer it keeps between reads,
// so a collector re-reading the same file every tick does not allocate.
type procFile struct {
	path string
	buf  []byte
	// keep: the descriptor stays open between reads (keptFd), each read
	// seeks it back to the start; for the files of the whole system that
	// a collector reads every tick (/proc/stat, /proc/meminfo, …), whose
	// descriptor lives as long as the collector.
	keep bool
	fd   keptFd
}

func newProcFile(path string) *procFile { return &procFile{path: path} }

// newKeptProcFile returns a procFile that keeps its descriptor open: a
// read costs lseek + read instead of openat + read + close. Only for procfs
// and sysfs files that exist as long as the system (a file replaced by
// rename would be read stale) and that the collector keeps for its life (the
// descriptor is never closed).
func newKeptProcFile(path string) *procFile { return &procFile{path: path, keep: true} }

// read returns the file's whole content; the slice is valid until the next
// read.
func (f *procFile) read() ([]byte, error) {
	if f.buf == nil {
		f.buf = make([]byte, 4096)
	}
	var n int
	var err error
	if f.keep {
		n, err = f.fd.readFull(f.path, &f.buf)
	} else {
		n, err = readFull(f.path, &f.buf)
	}
	if err != nil {
		return nil, err
	}
	return f.buf[:n], nil
}

var errSyntax = errors.New("malformed line")

// nextLine splits off the first line of b (without its newline).
func nextLine(b []byte) (line, rest []byte) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i], b[i+1:]
	}
	return b, nil
}

// nextField skips leading blanks and splits off the first blank-separated
// field of b.
func nextField(b []byte) (field, rest []byte) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	j := i
	for j < len(b) && b[j] != ' ' && b[j] != '\t' {
		j++
	}
	return b[i:j], b[j:]
}

// parseUint parses a decimal unsigned integer without allocating.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// parseUints fills dst with the next len(dst) fields of b and returns how
// many it parsed before running out of fields or meeting a non-number.
func parseUints(b []byte, dst []uint64) int {
	for i := range dst {
		var f []byte
		f, b = nextField(b)
		v, ok := parseUint(f)
		if !ok {
			return i
		}
		dst[i] = v
	}
	return len(dst)
}

// internedNames hands out one string per distinct byte name, so parsing
// device and interface names every tick does not allocate once they are
// known. Names no longer seen are dropped by sweep.
type internedNames struct {
	m map[string]*nameState
}

// nameState is the per-device state a rate collector keeps between ticks.
type nameState struct {
	name  string
	skip  bool      // filtered out by the collector's ignore rule
	seen  uint64    // generation in which the name was last seen
	valid bool      // prev holds a sample from an earlier tick
	prev  [3]uint64 // previous counters, meaning defined by the collector
}

func (n *internedNames) get(b []byte, gen uint64, skip func(string) bool) *nameState {
	if n.m == nil {
		n.m = make(map[string]*nameState)
	}
	if st, ok := n.m[string(b)]; ok { // no allocation for the lookup
		st.seen = gen
		return st
	}
	s := string(b)
	st := &nameState{name: s, skip: skip(s), seen: gen}
	n.m[s] = st
	return st
}

// sweep forgets names not seen in generation gen (unplugged disks, deleted
// interfaces), so their counters cannot produce a bogus rate if they return.
func (n *internedNames) sweep(gen uint64) {
	for k, st := range n.m {
		if st.seen != gen {
			delete(n.m, k)
		}
	}
}
