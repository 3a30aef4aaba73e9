package collect

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// Defaults and limits of the top-process snapshot.
const (
	DefaultTopProcesses      = 10
	DefaultProcessesInterval = 5 * time.Second
	// MaxTopProcesses bounds TopProcesses' n: the union of the top n by CPU
	// and by memory must stay within what the hub accepts (100).
	MaxTopProcesses = 50
	// MaxCommandBytes bounds Process.Command.
	MaxCommandBytes = 256
)

// Process is one entry of a top-process snapshot.
type Process struct {
	PID        uint32
	Name       string  // comm
	User       string  // user name of the real uid, or the uid in decimal
	Command    string  // command line, NULs as spaces, ≤ MaxCommandBytes, valid UTF-8
	CPUPercent float64 // % of one core since the previous snapshot
	RSSBytes   uint64
	State      string // kernel state letter: R, S, D, Z, T, I, …
}

// processStates are the values of the state label of processes_state, in
// the order of the counts TopProcesses keeps.
var processStates = [...]string{"running", "sleeping", "disk_sleep", "zombie", "stopped", "idle", "other"}

// stateIndex maps a kernel state letter to its processStates index.
func stateIndex(c byte) int {
	switch c {
	case 'R':
		return 0
	case 'S':
		return 1
	case 'D':
		return 2
	case 'Z':
		return 3
	case 'T', 't':
		return 4
	case 'I':
		return 5
	}
	return 6
}

// procEntry is one process of a scan that made a top list so far.
type procEntry struct {
	pid     uint32
	state   byte
	nameLen uint8
	name    [64]byte // comm; the kernel's are at most 64 bytes
	cpu     float64  // % of one core
	rss     uint64   // bytes
}

// TopProcesses takes top-process snapshots from procfs: the top n processes
// by CPU and by resident memory (union, each process once), and the number
// of processes per state. It is not a Collector: the agent calls Snapshot on
// its own, slower ticker; the state totals reach the batches through
// AppendStates. Snapshot must not be called concurrently with itself.
type TopProcesses struct {
	procPath string
	passwd   string // path of the passwd file, below RootFS
	n        int
	clkTck   float64 // clock ticks per second (USER_HZ)
	pageSize uint64
	now      func() time.Time

	// Owned by Snapshot.
	dir        procDir // open during Snapshot
	dirBuf     []byte
	buf        []byte
	path       []byte
	pids       []uint32
	byCPU      []procEntry // the top n so far by CPU, best first
	byRSS      []procEntry // the top n so far by resident memory, best first
	last       time.Time   // time of the previous scan (monotonic)
	users      map[uint32]string
	passwdRead bool

	// recs holds every process of the previous scan by ascending pid: its
	// start time, CPU ticks and kept /proc/PID/stat descriptor. procfs
	// lists pids in ascending order, so a scan walks recs alongside the
	// directory listing (a merge, no hashing) and builds next.
	recs, next []procRec
	// keptFDs counts the descriptors in recs: a rescan costs one pread per
	// kept process instead of openat + read + close (bounded by maxFDs;
	// processes beyond it are read by path).
	keptFDs    int
	statusFDs  map[uint32]statFD // of the listed processes
	cmdlineFDs map[uint32]statFD // of the listed processes
	maxFDs     int
	dirOpen    bool   // dir stays open between scans
	scan       uint32 // scan generation, to close descriptors of gone processes

	mu     sync.Mutex // protects states and fresh
	states [len(processStates)]float64
	fresh  bool // a scan finished since the last AppendStates
	labels [len(processStates)]metric.Labels
}

// NewTopProcesses returns a snapshot taker that lists the top n processes
// (at most MaxTopProcesses) by CPU and by memory.
func NewTopProcesses(opts Options, n int) *TopProcesses {
	opts = opts.withDefaults()
	t := &TopProcesses{
		procPath:   opts.ProcPath,
		passwd:     filepath.Join(opts.RootFS, "etc", "passwd"),
		n:          max(0, min(n, MaxTopProcesses)),
		clkTck:     100, // USER_HZ is 100 on every Linux architecture Go supports
		pageSize:   uint64(os.Getpagesize()),
		now:        time.Now,
		buf:        make([]byte, 1024),
		users:      make(map[uint32]string),
		statusFDs:  make(map[uint32]statFD),
		cmdlineFDs: make(map[uint32]statFD),
		maxFDs:     maxStatFDs(),
	}
	for i, s := range processStates {
		t.labels[i] = metric.Labels{{Name: "state", Value: s}}
	}
	return t
}

// AppendStates appends processes_state{state=…} for the latest scan to dst,
// once per scan (nothing when no scan finished since the previous call).
// It is safe to call concurrently with Snapshot.
func (t *TopProcesses) AppendStates(dst []metric.Sample) []metric.Sample {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.fresh {
		return dst
	}
	t.fresh = false
	for i, v := range t.states {
		dst = append(dst, metric.Sample{Name: "processes_state", Labels: t.labels[i], Value: v})
	}
	return dst
}

// Snapshot scans every process and returns the top list, sorted by CPU
// descending. CPU percentages cover the time since the previous call; on the
// first call they are 0. Processes that vanish during the scan are skipped.
func (t *TopProcesses) Snapshot(ctx context.Context) ([]Process, error) {
	if t.dirOpen && t.dir.rewind() != nil {
		t.dir.close()
		t.dirOpen = false
	}
	if !t.dirOpen {
		dir, err := openProcDir(t.procPath)
		if err != nil {
			return nil, err
		}
		t.dir, t.dirOpen = dir, true
	}
	var err error
	t.pids, err = t.dir.pids(&t.dirBuf, t.pids[:0])
	if err != nil {
		t.dir.close()
		t.dirOpen = false
		return nil, err
	}
	now := t.now()
	elapsed := now.Sub(t.last).Seconds()
	first := t.last.IsZero()
	t.last = now
	if !slices.IsSorted(t.pids) { // procfs lists pids in order; a fixture may not
		slices.Sort(t.pids)
	}
	var states [len(processStates)]float64
	t.byCPU, t.byRSS = t.byCPU[:0], t.byRSS[:0]
	t.next = t.next[:0]
	prev, j := t.recs, 0
	for i, pid := range t.pids {
		if i%256 == 0 && ctx.Err() != nil {
			t.next = append(t.next, prev[j:]...) // keep the rest for the next scan
			t.recs, t.next = t.next, t.recs
			return nil, ctx.Err()
		}
		for j < len(prev) && prev[j].pid < pid { // gone since the previous scan
			t.closeRec(&prev[j])
			j++
		}
		old := procRec{pid: pid, fd: -1}
		seen := false
		if j < len(prev) && prev[j].pid == pid {
			old, seen = prev[j], true
			j++
		} else if n := len(t.next); n > 0 && t.next[n-1].pid == pid {
			continue // listed twice (the directory changed while read)
		}
		b, fd, ok := t.readStat(pid, old.fd)
		if !ok {
			continue
		}
		st, ok := parseProcStat(b)
		if !ok {
			if fd >= 0 {
				closeFd(fd)
				t.keptFDs--
			}
			continue
		}
		states[stateIndex(st.state)]++
		t.next = append(t.next, procRec{pid: pid, fd: fd, start: st.start, ticks: st.ticks})
		var cpu float64
		if seen && old.start == st.start && !first && elapsed > 0 && st.ticks >= old.ticks {
			cpu = float64(st.ticks-old.ticks) / t.clkTck / elapsed * 100
		}
		if t.n == 0 {
			continue
		}
		// Keep the top lists as the scan goes: after the first few
		// processes, most fail one comparison with each list's last.
		e := procEntry{pid: pid, state: st.state, cpu: cpu, rss: st.rssPages * t.pageSize}
		inCPU := len(t.byCPU) < t.n || moreCPU(&e, &t.byCPU[len(t.byCPU)-1])
		inRSS := len(t.byRSS) < t.n || moreRSS(&e, &t.byRSS[len(t.byRSS)-1])
		if inCPU || inRSS {
			e.nameLen = uint8(copy(e.name[:], st.comm))
			if inCPU {
				t.byCPU = insertTop(t.byCPU, &e, t.n, moreCPU)
			}
			if inRSS {
				t.byRSS = insertTop(t.byRSS, &e, t.n, moreRSS)
			}
		}
	}
	for ; j < len(prev); j++ {
		t.closeRec(&prev[j])
	}
	t.recs, t.next = t.next, t.recs
	t.closeGone()

	t.mu.Lock()
	t.states = states
	t.fresh = true
	t.mu.Unlock()

	if t.n == 0 {
		return nil, nil
	}
	out := make([]Process, 0, len(t.byCPU)+len(t.byRSS))
	for _, list := range [2][]procEntry{t.byCPU, t.byRSS} {
	next:
		for i := range list {
			e := &list[i]
			for _, p := range out {
				if p.PID == e.pid {
					continue next
				}
			}
			out = append(out, t.process(e))
		}
	}
	return out, nil
}

// moreCPU and moreRSS order the top lists; ties go to the process listed
// first.
func moreCPU(a, b *procEntry) bool { return a.cpu > b.cpu || a.cpu == b.cpu && a.rss > b.rss }
func moreRSS(a, b *procEntry) bool { return a.rss > b.rss || a.rss == b.rss && a.cpu > b.cpu }

// insertTop puts e into list, which holds at most n entries best first by
// better, dropping the last when full. e must beat the last when full.
func insertTop(list []procEntry, e *procEntry, n int, better func(a, b *procEntry) bool) []procEntry {
	if len(list) < n {
		list = append(list, *e)
	} else {
		list[n-1] = *e
	}
	for j := len(list) - 1; j > 0 && better(&list[j], &list[j-1]); j-- {
		list[j], list[j-1] = list[j-1], list[j]
	}
	return list
}

// process fills in the details of a selected process: user and command line.
func (t *TopProcesses) process(e *procEntry) Process {
	p := Process{
		PID:        e.pid,
		Name:       validUTF8(e.name[:e.nameLen]),
		CPUPercent: round2(e.cpu),
		RSSBytes:   e.rss,
		State:      string(rune(e.state)),
	}
	if e.state >= utf8.RuneSelf {
		p.State = "?"
	}
	keep := t.keptFDs < t.maxFDs
	if b, ok := t.readKept(t.statusFDs, e.pid, "/status", keep); ok {
		if uid, ok := parseStatusUID(b); ok {
			p.User = t.user(uid)
		}
	}
	if b, ok := t.readKept(t.cmdlineFDs, e.pid, "/cmdline", keep); ok {
		p.Command = formatCmdline(b)
	}
	if p.Command == "" {
		p.Command = "[" + p.Name + "]" // kernel thread or zombie, as ps shows them
	}
	return p
}

// statFD is a kept /proc/PID/status or cmdline descriptor and the scan
// that last read it.
type statFD struct {
	fd   int
	scan uint32
}

// procRec is one process of the previous scan.
type procRec struct {
	pid   uint32
	fd    int    // kept /proc/PID/stat descriptor, or -1
	start uint64 // starttime, clock ticks since boot: tells a reused pid apart
	ticks uint64 // utime + stime, clock ticks
}

// closeRec closes the kept descriptor of a process that is gone.
func (t *TopProcesses) closeRec(r *procRec) {
	if r.fd >= 0 {
		closeFd(r.fd)
		r.fd = -1
		t.keptFDs--
	}
}

// readStat reads PID/stat into t.buf through fd, the descriptor kept from
// the previous scan (-1 for none), and returns the descriptor to keep.
// When the kept descriptor's process has exited (ESRCH), it is closed and
// the path opened afresh, which reaches whichever process holds the pid
// now; a new descriptor is kept while under the bound.
func (t *TopProcesses) readStat(pid uint32, fd int) ([]byte, int, bool) {
	if fd >= 0 {
		n, err := preadFd(fd, &t.buf)
		if err == nil && n > 0 {
			return t.buf[:n], fd, true
		}
		closeFd(fd)
		t.keptFDs--
	}
	t.path = strconv.AppendUint(t.path[:0], uint64(pid), 10)
	t.path = append(t.path, "/stat\x00"...)
	if t.keptFDs >= t.maxFDs {
		n, err := t.dir.read(t.path, &t.buf)
		if err != nil {
			return nil, -1, false
		}
		return t.buf[:n], -1, true
	}
	n, fd, err := t.dir.openRead(t.path, &t.buf)
	if err != nil {
		return nil, -1, false
	}
	if fd >= 0 {
		t.keptFDs++
	}
	return t.buf[:n], fd, true
}

// readKept reads PID/file through the descriptor kept in fds, reopening it
// when its process is gone; a new descriptor is kept only when keep is set.
func (t *TopProcesses) readKept(fds map[uint32]statFD, pid uint32, file string, keep bool) ([]byte, bool) {
	if f, ok := fds[pid]; ok {
		n, err := preadFd(f.fd, &t.buf)
		if err == nil {
			fds[pid] = statFD{f.fd, t.scan}
			return t.buf[:n], true
		}
		closeFd(f.fd)
		delete(fds, pid)
	}
	t.path = strconv.AppendUint(t.path[:0], uint64(pid), 10)
	t.path = append(t.path, file...)
	t.path = append(t.path, 0)
	if !keep {
		n, err := t.dir.read(t.path, &t.buf)
		if err != nil {
			return nil, false
		}
		return t.buf[:n], true
	}
	n, fd, err := t.dir.openRead(t.path, &t.buf)
	if err != nil {
		return nil, false
	}
	if fd >= 0 {
		fds[pid] = statFD{fd, t.scan}
	}
	return t.buf[:n], true
}

// closeGone closes the kept descriptors of processes the scan did not see,
// then starts the next generation.
func (t *TopProcesses) closeGone() {
	// status and cmdline descriptors are marked while the list is built,
	// after this call, with the next generation: they survive one scan,
	// and close when their process has left the list.
	for _, fds := range []map[uint32]statFD{t.statusFDs, t.cmdlineFDs} {
		for pid, f := range fds {
			if f.scan != t.scan {
				closeFd(f.fd)
				delete(fds, pid)
			}
		}
	}
	t.scan++
}

// Close releases the descriptors kept between scans and the /proc
// directory.
func (t *TopProcesses) Close() {
	for i := range t.recs {
		t.closeRec(&t.recs[i])
	}
	t.recs = t.recs[:0]
	for _, fds := range []map[uint32]statFD{t.statusFDs, t.cmdlineFDs} {
		for pid, f := range fds {
			closeFd(f.fd)
			delete(fds, pid)
		}
	}
	if t.dirOpen {
		t.dir.close()
		t.dirOpen = false
	}
}

// user resolves uid through the passwd file below RootFS, read once; the
// uid in decimal when it has no entry.
func (t *TopProcesses) user(uid uint32) string {
	if !t.passwdRead {
		t.passwdRead = true
		if b, err := os.ReadFile(t.passwd); err == nil {
			parsePasswd(b, t.users)
		}
	}
	if u, ok := t.users[uid]; ok {
		return u
	}
	u := strconv.FormatUint(uint64(uid), 10)
	if len(t.users) < 10_000 {
		t.users[uid] = u
	}
	return u
}

// procStat is what the top list needs of /proc/PID/stat.
type procStat struct {
	comm     []byte // sub-slice of the input
	state    byte
	ticks    uint64 // utime + stime, clock ticks
	start    uint64 // starttime, clock ticks since boot
	rssPages uint64
}

// parseProcStat parses /proc/PID/stat: "pid (comm) state ppid … utime stime
// … starttime vsize rss …". comm may hold spaces and parentheses, so it ends
// at the last ')'. It runs for every process of every scan, so it walks the
// line once and converts only the fields it keeps.
func parseProcStat(b []byte) (procStat, bool) {
	var st procStat
	open := bytes.IndexByte(b, '(')
	if open < 0 {
		return st, false
	}
	// The last ')': forward searches are vectorised, a backward one is not,
	// and after comm the line holds only numbers and the state letter.
	end := -1
	for i := open + 1; ; {
		k := bytes.IndexByte(b[i:], ')')
		if k < 0 {
			break
		}
		end = i + k
		i = end + 1
	}
	if end < 0 || end+2 >= len(b) {
		return st, false
	}
	st.comm = b[open+1 : end]
	// Fields from state (field 3) on, one space apart as the kernel writes
	// them; we need 3, 14, 15, 22 and 24.
	st.state = b[end+2]
	if b[end+1] != ' ' || st.state == ' ' {
		return st, false
	}
	var utime, stime uint64
	i, ok := skipFields(b, end+2, 11)
	if ok {
		utime, i, ok = uintField(b, i)
	}
	if ok {
		stime, i, ok = uintField(b, i)
	}
	if ok {
		i, ok = skipFields(b, i, 6)
	}
	if ok {
		st.start, i, ok = uintField(b, i)
	}
	if ok {
		i, ok = skipFields(b, i, 1)
	}
	if ok {
		st.rssPages, _, ok = uintField(b, i)
	}
	if !ok {
		return st, false
	}
	st.ticks = utime + stime
	return st, true
}

// skipFields returns the index after the n-th space from i. It tests
// eight bytes at a time: the parser runs on every process of every scan.
func skipFields(b []byte, i, n int) (int, bool) {
	const (
		highs  uint64 = 0x8080808080808080
		lows   uint64 = 0x7f7f7f7f7f7f7f7f
		spaces uint64 = 0x2020202020202020
	)
	for i+8 <= len(b) {
		t := binary.LittleEndian.Uint64(b[i:]) ^ spaces // bytes that were ' ' are 0
		m := ^((t&lows + lows) | t) & highs             // high bit of each zero byte, exactly
		if c := bits.OnesCount64(m); c < n {
			n -= c
			i += 8
			continue
		}
		for ; n > 1; n-- {
			m &= m - 1
		}
		return i + bits.TrailingZeros64(m)/8 + 1, true
	}
	for ; i < len(b); i++ {
		if b[i] == ' ' {
			if n--; n == 0 {
				return i + 1, true
			}
		}
	}
	return 0, false
}

// uintField parses the decimal field at i, ended by a space, a newline or
// the end of b, and returns the index after its separator.
func uintField(b []byte, i int) (uint64, int, bool) {
	var n uint64
	start := i
	for ; i < len(b) && b[i]-'0' <= 9; i++ {
		n = n*10 + uint64(b[i]-'0')
	}
	switch {
	case i == start, i < len(b) && b[i] != ' ' && b[i] != '\n':
		return 0, 0, false
	case i-start > 19: // may have overflowed: 19 digits always fit
		v, ok := parseUint(b[start:i])
		return v, i + 1, ok
	}
	return n, i + 1, true
}

// parseStatusUID returns the real uid from /proc/PID/status ("Uid:\treal\t…").
func parseStatusUID(b []byte) (uint32, bool) {
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		if rest, ok := bytes.CutPrefix(line, []byte("Uid:")); ok {
			f, _ := nextField(rest)
			v, ok := parseUint(f)
			if !ok || v > 1<<32-1 {
				return 0, false
			}
			return uint32(v), true
		}
	}
	return 0, false
}

// parsePasswd adds uid → name of every well-formed passwd line to users.
func parsePasswd(b []byte, users map[uint32]string) {
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		name, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 || name[0] == '#' {
			continue
		}
		_, rest, _ = bytes.Cut(rest, []byte(":")) // password
		uidField, _, ok := bytes.Cut(rest, []byte(":"))
		uid, okU := parseUint(uidField)
		if !ok || !okU || uid > 1<<32-1 {
			continue
		}
		if _, dup := users[uint32(uid)]; !dup {
			users[uint32(uid)] = validUTF8(name)
		}
	}
}

// formatCmdline turns /proc/PID/cmdline (NUL-separated arguments) into one
// line: NULs and control characters as spaces, trailing blanks trimmed, at
// most MaxCommandBytes of valid UTF-8.
func formatCmdline(b []byte) string {
	b = bytes.TrimRight(b, "\x00 ")
	out := make([]byte, 0, min(len(b), MaxCommandBytes))
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size <= 1 {
			r, size = utf8.RuneError, 1
		} else if r < 0x20 || r == 0x7f {
			r = ' '
		}
		if len(out)+utf8.RuneLen(r) > MaxCommandBytes {
			break
		}
		out = utf8.AppendRune(out, r)
		b = b[size:]
	}
	return string(out)
}

// validUTF8 returns b as a string with invalid UTF-8 replaced by U+FFFD.
func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return string(bytes.ToValidUTF8(b, []byte("\uFFFD")))
}
