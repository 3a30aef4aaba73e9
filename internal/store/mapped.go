package store

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// The TSDB tiers read their blocks, and the raw head its chunk files,
// through shared read-only mappings, and a page the TSDB touches stays in
// the hub's resident memory until its file is unmapped. A compaction reads
// every chunk and index page of its input blocks, so the hub's RSS rose by
// the size of those inputs while it ran: 153 MiB for two seconds when the
// 1m tier merged an hourly pass's blocks at 260,000 series, and more for
// the tier's later compactions of 6, 18 and 54 hours of minutes
// (docs/benchmarks.md, "Compactions' mapped pages"). Those pages are page
// cache the kernel may drop at any time, but they count in the RSS
// operators watch and in a container's working set.
//
// While the TSDB compacts blocks or writes its head out, and while a rollup
// pass reads a tier, mappedPages asks the kernel every mappedEvery, and
// once more at the end, to page out the mappings of the files being read
// or written (madvise MADV_PAGEOUT, Linux 5.4 and later): the input blocks,
// the block being written, the tier a pass reads. Other blocks' pages, the
// ones queries keep warm, are left alone. Nothing is lost: the mappings are
// read-only views of files, and a page read again comes from the file as
// it did the first time. Pageout rather than MADV_DONTNEED, because a file
// can be unmapped, and its addresses reused by the Go heap, between reading
// /proc/self/maps and the madvise: pageout of anonymous memory only swaps
// it out (nothing, without swap), where DONTNEED would zero it. Private
// mappings are left alone. Elsewhere than on Linux it does nothing.
//
// Pageout also drops the pages from the page cache, so a page read again
// is read from the disk again. The raw head's block write reads the head's
// chunk files in the order of the series' labels, a page here and there
// across all of them, for as long as the paced write lasts: paged out
// every 250 ms, 15 GB of chunk files were read as ~170 GB from the disk
// at 500,000 samples/s (docs/benchmarks.md). Files that nothing unmaps
// while their reader runs are therefore only unmapped from the process
// (MADV_DONTNEED, unmapOnly): they leave its RSS and stay in the page
// cache, and a page read again costs a minor fault. A pass over the
// mappings is over before the reader's end returns, so a DONTNEED never
// outlives the promise.
type mappedPages struct {
	every time.Duration
	log   *slog.Logger

	// pass is held by a pass over the mappings: a reader's end waits for
	// the one under way.
	pass    sync.Mutex
	mu      sync.Mutex
	readers map[*mappedReader]struct{}
	running bool
	wake    chan struct{}

	// advise applies a pass's advice to the mappings (pageOutMapped;
	// tests wrap it).
	advise func(advice func(path []byte) mappedAdvice) error
	// releases counts the passes over the mappings (tests).
	releases atomic.Int64
	disabled atomic.Bool
}

// mappedReader is one bulk reader's files: the directories under which
// (or, with tmpUnder, the directories ending in tmpSuffix under which) its
// mapped files lie, resolved, with a trailing separator. With unmapOnly
// they are unmapped but kept in the page cache (see mappedPages).
type mappedReader struct {
	dirs      [][]byte
	tmpUnder  []byte
	unmapOnly bool
}

// mappedAdvice is what a pass does with a mapping.
type mappedAdvice uint8

const (
	leaveMapped mappedAdvice = iota
	unmapPages               // MADV_DONTNEED: out of the RSS, still cached
	pageOut                  // MADV_PAGEOUT: out of the RSS and the cache
)

// advice is what r wants done with the mapping of path.
func (r *mappedReader) advice(path []byte) mappedAdvice {
	switch {
	case !r.match(path):
		return leaveMapped
	case r.unmapOnly:
		return unmapPages
	default:
		return pageOut
	}
}

// adviceOf is what readers want done with a mapping: pageout if any
// reader asks for it (always safe), else what the others ask.
func adviceOf(readers []*mappedReader) func(path []byte) mappedAdvice {
	return func(path []byte) mappedAdvice {
		a := leaveMapped
		for _, r := range readers {
			a = max(a, r.advice(path))
		}
		return a
	}
}

// tmpSuffix ends the directory the TSDB writes a new block in.
const tmpSuffix = ".tmp-for-creation"

func (r *mappedReader) match(path []byte) bool {
	for _, d := range r.dirs {
		if bytes.HasPrefix(path, d) {
			return true
		}
	}
	if r.tmpUnder != nil && bytes.HasPrefix(path, r.tmpUnder) {
		rest := path[len(r.tmpUnder):]
		if i := bytes.IndexByte(rest, os.PathSeparator); i > 0 && bytes.HasSuffix(rest[:i], []byte(tmpSuffix)) {
			return true
		}
	}
	return false
}

// mappedEvery is how often the mappings are paged out while they are read
// in bulk: a compaction reads 100–250 MB/s here, so a quarter of a second
// bounds what it keeps mapped to tens of MB.
const mappedEvery = 250 * time.Millisecond

func newMappedPages(log *slog.Logger) *mappedPages {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &mappedPages{every: mappedEvery, log: log, wake: make(chan struct{}, 1), readers: map[*mappedReader]struct{}{}, advise: pageOutMapped}
	m.disabled.Store(!mappedSupported)
	return m
}

// resolveDir makes dir absolute, resolves its symbolic links (as
// /proc/self/maps shows paths) and appends a separator.
func resolveDir(dir string) []byte {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	return []byte(abs + string(os.PathSeparator))
}

// begin marks the start of bulk reading of the files under dirs, and of
// the new blocks' directories under newBlocksIn when it is not ""; the
// returned func marks its end and pages those files out once more.
func (m *mappedPages) begin(newBlocksIn string, dirs ...string) (end func()) {
	r := &mappedReader{}
	if newBlocksIn != "" {
		r.tmpUnder = resolveDir(newBlocksIn)
	}
	return m.add(r, dirs)
}

// beginUnmapping is begin for files under dirs that nothing unmaps until
// the returned func has returned: their pages are unmapped from the
// process but stay in the page cache.
func (m *mappedPages) beginUnmapping(dirs ...string) (end func()) {
	return m.add(&mappedReader{unmapOnly: true}, dirs)
}

func (m *mappedPages) add(r *mappedReader, dirs []string) (end func()) {
	if m == nil || m.disabled.Load() {
		return func() {}
	}
	for _, d := range dirs {
		if p := resolveDir(d); p != nil {
			r.dirs = append(r.dirs, p)
		}
	}
	m.mu.Lock()
	m.readers[r] = struct{}{}
	if !m.running {
		m.running = true
		go m.run()
	}
	m.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			// A last pass, with what the other readers want for the
			// same files (a page unmapped is no longer paged out). After
			// it, and after the pass under way, which may be advising on
			// r's files, no pass sees r again.
			m.pass.Lock()
			m.release(adviceOf(m.current()))
			m.mu.Lock()
			delete(m.readers, r)
			m.mu.Unlock()
			m.pass.Unlock()
			select {
			case m.wake <- struct{}{}:
			default:
			}
		})
	}
}

// run pages the readers' mappings out every m.every until none is left.
func (m *mappedPages) run() {
	t := time.NewTicker(m.every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-m.wake:
		}
		if !m.runPass() {
			return
		}
	}
}

// runPass makes one pass for the readers there are, and reports whether
// there were any (if not, run ends).
func (m *mappedPages) runPass() bool {
	m.pass.Lock()
	defer m.pass.Unlock()
	m.mu.Lock()
	if len(m.readers) == 0 {
		m.running = false
		m.mu.Unlock()
		return false
	}
	m.mu.Unlock()
	m.release(adviceOf(m.current()))
	return true
}

// current returns the readers there are.
func (m *mappedPages) current() []*mappedReader {
	m.mu.Lock()
	defer m.mu.Unlock()
	readers := make([]*mappedReader, 0, len(m.readers))
	for r := range m.readers {
		readers = append(readers, r)
	}
	return readers
}

func (m *mappedPages) release(advice func(path []byte) mappedAdvice) {
	if m.disabled.Load() {
		return
	}
	m.releases.Add(1)
	if err := m.advise(advice); err != nil {
		// An old kernel (no MADV_PAGEOUT) or no /proc: stop trying.
		m.disabled.Store(true)
		m.log.Info("mapped store files stay in resident memory while compacted", "err", err)
	}
}
