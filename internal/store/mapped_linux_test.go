package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"golang.org/x/sys/unix"

	"github.com/sysmonstm/sysmonstm/internal/procmaps"
)

// mapFile writes size bytes to path, syncs them (clean page cache pages
// can be paged out) and maps the file read-only with flags.
func mapFile(t *testing.T, path string, size int, flags int) []byte {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	b, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, flags)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Munmap(b) })
	return b
}

// touch reads every page of b and checks the contents.
func touch(t *testing.T, b []byte) {
	t.Helper()
	for i := 0; i < len(b); i += os.Getpagesize() {
		if b[i] != byte(i*7) {
			t.Fatalf("byte %d is %d, want %d", i, b[i], byte(i*7))
		}
	}
}

// resident is the fraction of b's pages in memory (mincore).
func resident(t *testing.T, b []byte) float64 {
	t.Helper()
	vec := make([]byte, (len(b)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return float64(n) / float64(len(vec))
}

func TestPageOutMapped(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	const size = 8 << 20
	in := mapFile(t, filepath.Join(dir, "1m", "01BLOCK", "chunks", "000001"), size, unix.MAP_SHARED)
	private := mapFile(t, filepath.Join(dir, "private"), size, unix.MAP_PRIVATE)
	out := mapFile(t, filepath.Join(other, "chunks", "000001"), size, unix.MAP_SHARED)
	for _, b := range [][]byte{in, private, out} {
		touch(t, b)
		if r := resident(t, b); r < 0.9 {
			t.Fatalf("%.0f %% resident after reading every page", 100*r)
		}
	}
	m := newMappedPages(nil)
	m.begin("", dir)()
	if m.disabled.Load() {
		t.Fatal("paging out was disabled (kernel without MADV_PAGEOUT?)")
	}
	if r := resident(t, in); r > 0.5 {
		t.Errorf("the store's mapped file: %.0f %% resident after paging out, want it paged out", 100*r)
	}
	if r := resident(t, private); r < 0.9 {
		t.Errorf("a private mapping under the store: %.0f %% resident, want it left alone", 100*r)
	}
	if r := resident(t, out); r < 0.9 {
		t.Errorf("a mapping outside the store: %.0f %% resident, want it left alone", 100*r)
	}
	touch(t, in) // read back from the file, unchanged
}

func TestSharedFile(t *testing.T) {
	for line, want := range map[string]string{
		"7f0000000000-7f0000100000 r--s 00000000 fd:01 1234   /var/lib/sysmonstm/1m/01J/chunks/000001":   "/var/lib/sysmonstm/1m/01J/chunks/000001",
		"7f0000000000-7f0000100000 r--s 00000000 fd:01 1234   /var/lib/sysmonstm/1m/01J/index (deleted)": "/var/lib/sysmonstm/1m/01J/index",
		"7f0000000000-7f0000100000 r--s 00000000 fd:01 1234   /var/lib/sys monstm/raw/index":             "/var/lib/sys monstm/raw/index",
		"7f0000000000-7f0000100000 r--p 00000000 fd:01 1234   /var/lib/sysmonstm/1m/01J/index":           "", // private
		"7f0000000000-7f0000100000 rw-s 00000000 fd:01 1234   /var/lib/sysmonstm/1m/01J/index":           "", // writable
		"7f0000000000-7f0000100000 r--s 00000000 00:01 1234   /SYSV00000000 (deleted)":                   "/SYSV00000000",
		"7f0000000000-7f0000100000 r--s 00000000 00:00 0 ":                                               "",
		"7ffd00000000-7ffd00021000 r--s 00000000 00:00 0                          [vvar]":                "",
	} {
		m, ok := procmaps.Parse([]byte(line))
		if !ok {
			t.Fatalf("%q does not parse", line)
		}
		path, ok := sharedFile(m)
		if string(path) != want || ok != (want != "") {
			t.Errorf("%q: got %q %v, want %q", line, path, ok, want)
		}
	}
}

func TestMappedReaderMatch(t *testing.T) {
	r := &mappedReader{dirs: [][]byte{[]byte("/d/1m/01A/"), []byte("/d/1m/01B/")}, tmpUnder: []byte("/d/1m/")}
	for path, want := range map[string]bool{
		"/d/1m/01A/chunks/000001":            true,
		"/d/1m/01B/index":                    true,
		"/d/1m/01C.tmp-for-creation/index":   true,
		"/d/1m/01C/index":                    false, // another block: queries keep it warm
		"/d/1m/01AB/index":                   false,
		"/d/1m/x/01C.tmp-for-creation/index": false,
		"/d/raw/01D.tmp-for-creation/index":  false,
		"/d/1m/01C.tmp-for-creation":         false,
		"/d/1m/chunks_head/000001":           false,
		"/elsewhere/d/1m/01A/chunks/000001":  false,
	} {
		if got := r.match([]byte(path)); got != want {
			t.Errorf("match(%q) = %v, want %v", path, got, want)
		}
	}
}

// TestCompactionPagesOutMappedFiles checks the wiring: a rollup pass and a
// compaction of the tier's blocks each page the store's mappings out.
func TestCompactionPagesOutMappedFiles(t *testing.T) {
	s, _ := crashFixture(t, "")
	before := s.mapped.releases.Load()
	mustRollup(t, s)
	rolled := waitReleases(s, before)
	if rolled == before {
		t.Fatal("the rollup pass did not page out the mapped files")
	}
	want := answers(t, s)
	blocks := len(s.tier1m.Blocks())
	if err := s.tier1m.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(s.tier1m.Blocks()); n >= blocks {
		t.Fatalf("1m tier: %d blocks after compacting %d, want fewer", n, blocks)
	}
	if waitReleases(s, rolled) == rolled {
		t.Fatal("the compaction did not page out the mapped files")
	}
	if got := answers(t, s); !reflect.DeepEqual(got, want) {
		t.Fatalf("the compaction changed the answers:\n got %+v\nwant %+v", got, want)
	}
}

// waitReleases waits up to 5 s for the mappings to be paged out after n
// passes over them (the last one runs on its own goroutine), and returns
// the count.
func waitReleases(s *Store, n int64) int64 {
	deadline := time.Now().Add(5 * time.Second)
	for s.mapped.releases.Load() == n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return s.mapped.releases.Load()
}

// TestCompactionResidentMemory measures what the 1m tier's compaction of
// its blocks adds to the process's resident memory: HOURS one-hour blocks
// of HOSTS × METRICS × 4 rollups at one minute (a pass's blocks; the
// defaults are the 260,000-series workload of docs/benchmarks.md), then
// the tier's own compaction of them (six 1-h blocks into one of 6 h, and so
// on), sampling VmRSS and RssFile every 10 ms. SYSMONSTM_BENCH_MAPPED_OFF=1
// leaves the mapped pages alone, as the TSDB alone does. It is a
// measurement, not a check: run it with SYSMONSTM_BENCH_MAPPED=1 -v.
func TestCompactionResidentMemory(t *testing.T) {
	if os.Getenv("SYSMONSTM_BENCH_MAPPED") == "" {
		t.Skip("set SYSMONSTM_BENCH_MAPPED=1 to measure a compaction's resident memory")
	}
	hosts := envInt("SYSMONSTM_BENCH_HOSTS", 200)
	metrics := envInt("SYSMONSTM_BENCH_METRICS", 1300)
	hours := envInt("SYSMONSTM_BENCH_HOURS", 7)
	ctx := context.Background()
	s, _ := openTest(t, "", base.Add(time.Duration(hours+2)*time.Hour), nil)
	s.tier1m.DisableCompactions() // this test compacts
	if os.Getenv("SYSMONSTM_BENCH_MAPPED_OFF") != "" {
		s.mapped.disabled.Store(true)
	}
	if d, err := time.ParseDuration(os.Getenv("SYSMONSTM_BENCH_MAPPED_EVERY")); err == nil && d > 0 {
		s.mapped.every = d // how often to page out; mappedEvery when unset
	}
	var lsets []labels.Labels
	for h := range hosts {
		for m := range metrics {
			for _, r := range []string{"count", "max", "min", "sum"} {
				lsets = append(lsets, labels.FromStrings(labels.MetricName, fmt.Sprintf("bench_metric_%04d", m), "machine", fmt.Sprintf("host-%04d", h), rollupLabel, r))
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	walk := make([]float64, len(lsets))
	for i := range walk {
		walk[i] = float64(rng.IntN(10000))
	}
	began := time.Now()
	for hr := range hours {
		b, err := s.newBatch(2 * hourMs)
		if err != nil {
			t.Fatal(err)
		}
		for i, ls := range lsets {
			var ref storage.SeriesRef
			for m := range 60 {
				ts := base.Add(time.Duration(hr)*time.Hour + time.Duration(m)*time.Minute).UnixMilli()
				v := walk[i]
				if i%4 == 0 {
					v = 60 // count
				} else {
					walk[i] = max(0, walk[i]+float64(rng.IntN(201)-100))
				}
				if ref, err = b.Append(ref, ls, ts, v); err != nil {
					t.Fatal(err)
				}
			}
			if i%10_000 == 0 {
				if err := b.Commit(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		ids, _, err := b.write(ctx, s.stagingPath(), s.tsdbLog)
		if err != nil {
			t.Fatal(err)
		}
		s.rollupMu.Lock()
		err = s.commitBlocks(Tier1m, ids, map[string]int64{})
		s.rollupMu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	var inputs int64
	for _, b := range s.tier1m.Blocks() {
		inputs += b.Size()
	}
	t.Logf("%d blocks of %d series, %.0f MiB on disk, written in %v", len(s.tier1m.Blocks()), len(lsets), float64(inputs)/(1<<20), time.Since(began).Round(time.Second))
	lsets, walk = nil, nil
	runtime.GC()
	debug.FreeOSMemory()
	rss0, file0 := procRSS(t)
	stop, done := make(chan struct{}), make(chan [2]int64)
	go func() {
		var peak [2]int64
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			rss, file := procRSS(t)
			peak[0], peak[1] = max(peak[0], rss), max(peak[1], file)
			select {
			case <-stop:
				done <- peak
				return
			case <-tick.C:
			}
		}
	}()
	began = time.Now()
	if err := s.tier1m.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	took := time.Since(began)
	close(stop)
	peak := <-done
	var out int64
	for _, b := range s.tier1m.Blocks() {
		out += b.Size()
	}
	t.Logf("compacted into %d blocks (%.0f MiB) in %v; VmRSS %.0f MiB before, peak +%.0f MiB; RssFile %.0f MiB before, peak +%.0f MiB (paging out off: %v)",
		len(s.tier1m.Blocks()), float64(out)/(1<<20), took.Round(time.Millisecond),
		float64(rss0)/(1<<20), float64(peak[0]-rss0)/(1<<20), float64(file0)/(1<<20), float64(peak[1]-file0)/(1<<20), s.mapped.disabled.Load())
}

// procRSS reads the process's VmRSS and RssFile in bytes.
func procRSS(t *testing.T) (rss, file int64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Error(err)
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = n << 10
		case "RssFile:":
			file = n << 10
		}
	}
	return rss, file
}

// TestUnmapOnlyKeepsPageCache: files a reader only unmaps leave the
// process's resident memory but stay in the page cache, so that reading
// them again reads no disk; a file a pageout reader reads too is paged out.
func TestUnmapOnlyKeepsPageCache(t *testing.T) {
	dir, both := t.TempDir(), t.TempDir()
	const size = 8 << 20
	kept := mapFile(t, filepath.Join(dir, "chunks_head", "000001"), size, unix.MAP_SHARED)
	shared := mapFile(t, filepath.Join(both, "chunks_head", "000001"), size, unix.MAP_SHARED)
	for _, b := range [][]byte{kept, shared} {
		touch(t, b)
		if r := mappedRSS(t, b); r < size*9/10 {
			t.Fatalf("%d KiB of the mapping resident after reading every page", r>>10)
		}
	}
	m := newMappedPages(nil)
	endBoth := m.begin("", both)
	m.beginUnmapping(dir, both)()
	endBoth()
	if m.disabled.Load() {
		t.Fatal("paging out was disabled")
	}
	if r := mappedRSS(t, kept); r > size/10 {
		t.Errorf("unmapped only: %d KiB of the mapping still in the process's RSS", r>>10)
	}
	if r := resident(t, kept); r < 0.9 {
		t.Errorf("unmapped only: %.0f %% of the file in the page cache, want it kept", 100*r)
	}
	if r := resident(t, shared); r > 0.5 {
		t.Errorf("read by a pageout reader too: %.0f %% of the file in the page cache, want it paged out", 100*r)
	}
	touch(t, kept)
	touch(t, shared)
}

// TestMappedEndWaitsForPass: once a reader's end has returned, no pass
// advises on its files (the TSDB may unmap them then, and the Go heap
// reuse their addresses: a DONTNEED there would zero the heap's pages).
func TestMappedEndWaitsForPass(t *testing.T) {
	dir := t.TempDir()
	path := resolveDir(dir)
	m := newMappedPages(nil)
	m.every = 100 * time.Microsecond
	var ended atomic.Bool
	var late atomic.Int64
	m.advise = func(advice func(path []byte) mappedAdvice) error {
		time.Sleep(50 * time.Microsecond) // reading /proc/self/maps
		if ended.Load() && advice(append(path[:len(path):len(path)], "000001"...)) == unmapPages {
			late.Add(1)
		}
		return nil
	}
	for range 300 {
		ended.Store(false)
		end := m.beginUnmapping(dir)
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		end()
		ended.Store(true)
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
	}
	if n := late.Load(); n > 0 {
		t.Fatalf("%d passes advised on a reader's files after its end returned", n)
	}
}

// mappedRSS is how much of the mapping b is resident in this process
// (Rss of its /proc/self/smaps entry).
func mappedRSS(t *testing.T, b []byte) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	lo := uintptr(unsafe.Pointer(&b[0]))
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		if m, ok := procmaps.Parse([]byte(line)); ok {
			in = uintptr(m.Lo) == lo
			continue
		}
		if v, ok := strings.CutPrefix(line, "Rss:"); in && ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no mapping at %#x in /proc/self/smaps", lo)
	return 0
}

// TestRawHeadWriteUnmapsChunkFiles checks the wiring: the raw tier's head
// write only unmaps the head's chunk files (the page cache keeps them for
// the rest of the write) and pages out the block it writes.
func TestRawHeadWriteUnmapsChunkFiles(t *testing.T) {
	skipUnlessTSDB(t)
	s, _ := openTest(t, "", base, nil)
	raw := rawTSDB(t, s)
	raw.DisableCompactions() // only the Compact below
	appendRange(t, s, series("load1", "m1"), base, 3*3600, 10*time.Second, func(i int) float64 { return float64(i) })
	dir := resolveDir(raw.Dir())
	chunkFile := append(slices.Clip(dir), "chunks_head/000001"...)
	newBlock := append(slices.Clip(dir), "01KBLOCK.tmp-for-creation/index"...)
	var chunks, block atomic.Int32 // the strongest advice seen
	s.mapped.advise = func(advice func(path []byte) mappedAdvice) error {
		for _, c := range []struct {
			path []byte
			seen *atomic.Int32
		}{{chunkFile, &chunks}, {newBlock, &block}} {
			if a := int32(advice(c.path)); a > c.seen.Load() {
				c.seen.Store(a)
			}
		}
		return pageOutMapped(advice)
	}
	if err := raw.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(raw.Blocks()) == 0 {
		t.Fatal("no block written")
	}
	if a := mappedAdvice(chunks.Load()); a != unmapPages {
		t.Errorf("the head's chunk files: advice %d, want %d (unmapped, kept in the page cache)", a, unmapPages)
	}
	if a := mappedAdvice(block.Load()); a != pageOut {
		t.Errorf("the new block: advice %d, want %d (paged out)", a, pageOut)
	}
}

// TestHourlyPassFromMinutesLeavesRawMapped: an hourly pass served by the
// minutes kept reads nothing of the raw tier, and leaves its mappings
// alone (its head's chunk files may be read by the head's write then); a
// pass that reads the raw tier back pages it out.
func TestHourlyPassFromMinutesLeavesRawMapped(t *testing.T) {
	skipUnlessTSDB(t)
	rng := rand.New(rand.NewPCG(3, 4))
	kept, clk := openTest(t, "", base, nil)
	raw, clkRaw := openTest(t, "", base, func(o *Options) { o.RollupFromRaw = true })
	minuteWorkload(t, rng, []*Store{kept, raw}, base, base.Add(time.Hour+5*time.Minute), time.Time{})
	for _, c := range []struct {
		s    *Store
		clk  *fakeClock
		want mappedAdvice
	}{{kept, clk, leaveMapped}, {raw, clkRaw, pageOut}} {
		chunkFile := append(resolveDir(rawTSDB(t, c.s).Dir()), "chunks_head/000001"...)
		var seen atomic.Int32
		c.s.mapped.advise = func(advice func(path []byte) mappedAdvice) error {
			if a := int32(advice(chunkFile)); a > seen.Load() {
				seen.Store(a)
			}
			return pageOutMapped(advice)
		}
		c.clk.Set(base.Add(time.Hour + 5*time.Minute))
		mustRollup(t, c.s)
		if got := mappedAdvice(seen.Load()); got != c.want {
			t.Errorf("RollupFromRaw %v: the raw head's chunk files got advice %d in the hourly pass, want %d", c.s.opts.RollupFromRaw, got, c.want)
		}
	}
}
