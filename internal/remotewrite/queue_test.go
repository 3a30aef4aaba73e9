package remotewrite

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// body returns a distinct record body of about n bytes.
func body(i, n int) []byte {
	return []byte(fmt.Sprintf("%08d%s", i, strings.Repeat("x", max(0, n-8))))
}

func openQ(t *testing.T, dir string, maxB, segB int64, log *slog.Logger) *Queue {
	t.Helper()
	q, err := OpenQueue(QueueOptions{Dir: dir, MaxBytes: maxB, SegmentBytes: segB, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// drain reads and commits everything pending, returning the bodies' ids.
func drain(t *testing.T, q *Queue) []string {
	t.Helper()
	var ids []string
	for {
		b, ok, err := q.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return ids
		}
		for _, r := range b.Records {
			ids = append(ids, string(r.Body[:8]))
		}
		if err := q.Commit(b); err != nil {
			t.Fatal(err)
		}
	}
}

func ids(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%08d", i))
	}
	return out
}

func equal(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("records\n got %v\nwant %v", got, want)
	}
}

func TestQueueAppendReadCommitAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	q := openQ(t, dir, 1<<30, 4096, nil)
	defer q.Close()
	for i := range 100 {
		if err := q.Append(body(i, 300), 10, int64(1000+i)); err != nil {
			t.Fatal(err)
		}
	}
	st := q.Stats()
	if st.PendingSamples != 1000 || st.PendingBytes != 100*(300+20) {
		t.Fatalf("stats %+v", st)
	}
	b, ok, err := q.Next()
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if st := q.Stats(); st.OldestTs != 1000 {
		t.Fatalf("oldest ts %d, want 1000", st.OldestTs)
	}
	if err := q.Commit(b); err != nil {
		t.Fatal(err)
	}
	rest := drain(t, q)
	if got := len(b.Records) + len(rest); got != 100 {
		t.Fatalf("read %d records, want 100", got)
	}
	equal(t, rest, ids(len(b.Records), 100))
	if st := q.Stats(); st.PendingSamples != 0 || st.PendingBytes != 0 || st.OldestTs != 0 {
		t.Fatalf("drained stats %+v", st)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("segments left after draining: %v (want only the head)", segs)
	}
}

func TestQueueRestartKeepsUnsentOnly(t *testing.T) {
	for _, closeFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("close=%v", closeFirst), func(t *testing.T) {
			dir := t.TempDir()
			q := openQ(t, dir, 1<<30, 2048, nil)
			for i := range 30 {
				if err := q.Append(body(i, 200), 1, int64(i)); err != nil {
					t.Fatal(err)
				}
			}
			// Send the first batch only.
			b, _, _ := q.Next()
			if err := q.Commit(b); err != nil {
				t.Fatal(err)
			}
			sent := len(b.Records)
			if closeFirst {
				if err := q.Close(); err != nil {
					t.Fatal(err)
				}
			} // else: as after SIGKILL, nothing closed or synced
			q2 := openQ(t, dir, 1<<30, 2048, nil)
			defer q2.Close()
			if st := q2.Stats(); st.PendingSamples != int64(30-sent) {
				t.Fatalf("pending %d after restart, want %d", st.PendingSamples, 30-sent)
			}
			for i := 30; i < 35; i++ {
				if err := q2.Append(body(i, 200), 1, int64(i)); err != nil {
					t.Fatal(err)
				}
			}
			equal(t, drain(t, q2), ids(sent, 35))
			// And a third open finds nothing pending.
			q3 := openQ(t, dir, 1<<30, 2048, nil)
			defer q3.Close()
			if st := q3.Stats(); st.PendingSamples != 0 {
				t.Fatalf("pending %d after draining and reopening", st.PendingSamples)
			}
		})
	}
}

// logBuf is a concurrency-safe log sink.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestQueueCorruptTailIsTruncated(t *testing.T) {
	cases := map[string]func(data []byte) []byte{
		"torn last record": func(d []byte) []byte { return d[:len(d)-5] },
		"flipped byte":     func(d []byte) []byte { d[len(d)-3] ^= 0xff; return d },
		"garbage appended": func(d []byte) []byte { return append(d, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9) },
		"huge length":      func(d []byte) []byte { return append(d, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0) },
	}
	for name, corrupt := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			q := openQ(t, dir, 1<<30, 1<<20, nil)
			for i := range 5 {
				if err := q.Append(body(i, 100), 1, int64(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
			path := segs[0]
			data, _ := os.ReadFile(path)
			if err := os.WriteFile(path, corrupt(data), 0o640); err != nil {
				t.Fatal(err)
			}
			var log logBuf
			q2 := openQ(t, dir, 1<<30, 1<<20, slog.New(slog.NewTextHandler(&log, nil)))
			defer q2.Close()
			if !strings.Contains(log.String(), "truncating the segment") {
				t.Fatalf("no log line about the truncation: %q", log.String())
			}
			want := ids(0, 5)
			if name != "garbage appended" && name != "huge length" {
				want = ids(0, 4)
			}
			equal(t, drain(t, q2), want)
			if fi, _ := os.Stat(path); fi != nil && fi.Size() > int64(len(data)) {
				t.Fatalf("segment not truncated: %d bytes", fi.Size())
			}
		})
	}
}

func TestQueueUnreadableCursorResendsFromOldest(t *testing.T) {
	dir := t.TempDir()
	q := openQ(t, dir, 1<<30, 1<<20, nil)
	for i := range 3 {
		_ = q.Append(body(i, 50), 1, 0)
	}
	b, _, _ := q.Next()
	_ = q.Commit(b)
	_ = q.Close()
	if err := os.WriteFile(filepath.Join(dir, cursorFile), []byte("garbage"), 0o640); err != nil {
		t.Fatal(err)
	}
	var log logBuf
	q2 := openQ(t, dir, 1<<30, 1<<20, slog.New(slog.NewTextHandler(&log, nil)))
	defer q2.Close()
	equal(t, drain(t, q2), ids(0, 3))
	if !strings.Contains(log.String(), "unreadable read position") {
		t.Fatalf("log: %q", log.String())
	}
}

func TestQueueFullDropsOldestAndCounts(t *testing.T) {
	dir := t.TempDir()
	const maxB, segB = 1 << 20, 64 << 10
	q := openQ(t, dir, maxB, segB, nil)
	defer q.Close()
	const n, size = 2000, 1000 // ~2 MB into a 1 MiB queue
	for i := range n {
		if err := q.Append(body(i, size), 3, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	st := q.Stats()
	if st.Dropped == 0 || st.Dropped%3 != 0 {
		t.Fatalf("dropped %d samples, want some (a multiple of 3)", st.Dropped)
	}
	if st.Dropped+st.PendingSamples != 3*n {
		t.Fatalf("dropped %d + pending %d != appended %d", st.Dropped, st.PendingSamples, 3*n)
	}
	var onDisk int64
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	for _, s := range segs {
		fi, _ := os.Stat(s)
		onDisk += fi.Size()
	}
	if onDisk > maxB {
		t.Fatalf("%d bytes of segments on disk, over the %d cap", onDisk, maxB)
	}
	got := drain(t, q)
	first := n - len(got)
	equal(t, got, ids(first, n)) // the newest, in order
	if int64(len(got))*3 != st.PendingSamples {
		t.Fatalf("read %d records, pending said %d samples", len(got), st.PendingSamples)
	}
}

// A reader in the middle of a segment that the full queue drops moves on to
// the next segment; the batch it holds no longer commits.
func TestQueueFullWhileReading(t *testing.T) {
	dir := t.TempDir()
	q := openQ(t, dir, 1<<20, 64<<10, nil)
	defer q.Close()
	for i := range 10 {
		_ = q.Append(body(i, 1000), 1, 0)
	}
	b, _, _ := q.Next()
	for i := 10; i < 3000; i++ {
		_ = q.Append(body(i, 1000), 1, 0)
	}
	if q.Current(b) {
		t.Fatal("batch of a dropped segment is still current")
	}
	_ = q.Commit(b) // no effect
	got := drain(t, q)
	if st := q.Stats(); st.Dropped+int64(len(got)) != 3000 {
		t.Fatalf("dropped %d + read %d != 3000", st.Dropped, len(got))
	}
}

func TestQueueConcurrentAppendAndRead(t *testing.T) {
	q := openQ(t, t.TempDir(), 1<<30, 32<<10, nil)
	defer q.Close()
	const writers, per = 4, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range per {
				if err := q.Append(body(w*per+i, 100), 1, 0); err != nil {
					t.Error(err)
				}
			}
		})
	}
	seen := map[string]bool{}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			for _, id := range drain(t, q) {
				seen[id] = true
			}
			if len(seen) != writers*per {
				t.Fatalf("read %d distinct records, want %d", len(seen), writers*per)
			}
			return
		default:
			b, ok, err := q.Next()
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				for _, r := range b.Records {
					seen[string(r.Body[:8])] = true
				}
				_ = q.Commit(b)
			}
		}
	}
}

// Segments deleted by hand (a dropped backlog) next to a kept cursor: new
// segments must not sort before the old read position, or the next start
// would take them for sent.
func TestQueueSegmentsDeletedCursorKept(t *testing.T) {
	dir := t.TempDir()
	q := openQ(t, dir, 1<<30, 1024, nil)
	for i := range 20 {
		_ = q.Append(body(i, 200), 1, 0)
	}
	drain(t, q)
	_ = q.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	for _, s := range segs {
		_ = os.Remove(s)
	}
	q2 := openQ(t, dir, 1<<30, 1024, nil)
	for i := 100; i < 103; i++ {
		_ = q2.Append(body(i, 50), 1, 0)
	}
	_ = q2.Close()
	q3 := openQ(t, dir, 1<<30, 1024, nil)
	defer q3.Close()
	equal(t, drain(t, q3), ids(100, 103))
}

func TestOpenQueueRejectsTinyCap(t *testing.T) {
	if _, err := OpenQueue(QueueOptions{Dir: t.TempDir(), MaxBytes: 1000}); err == nil {
		t.Fatal("a 1000-byte cap was accepted")
	}
}

// FuzzOpenQueue: whatever a segment holds, opening and draining the queue
// neither panics nor returns a record that fails its checksum.
func FuzzOpenQueue(f *testing.F) {
	good := appendFrame(nil, 2, 5, []byte("hello"))
	f.Add(good)
	f.Add(append(append([]byte{}, good...), good[:7]...))
	f.Add([]byte{})
	f.Add([]byte{255, 255, 255, 255, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d%s", 1, segSuffix)), data, 0o640); err != nil {
			t.Fatal(err)
		}
		q, err := OpenQueue(QueueOptions{Dir: dir, MaxBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		var samples int64
		for {
			b, ok, err := q.Next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			samples += int64(b.Samples)
			_ = q.Commit(b)
		}
		if st := q.Stats(); st.PendingSamples != 0 {
			t.Fatalf("pending %d after draining %d", st.PendingSamples, samples)
		}
	})
}

// The progress of the batch at the read position survives a restart (a
// kill: nothing closed): Next returns the same batch, even when records
// were appended after it, with the requests done, and the pending count
// leaves the done samples out. An old-format cursor (position only) is
// still read; a corrupt one restarts from the oldest segment.
func TestQueueProgressAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	q := openQ(t, dir, 1<<30, 1<<20, nil)
	defer q.Close()
	for i := range 3 {
		if err := q.Append(body(i, 50), 10, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	b, _, _ := q.Next()
	if len(b.Records) != 3 || b.done != nil {
		t.Fatalf("first batch: %d records, done %v", len(b.Records), b.done)
	}
	for _, sh := range []int{1, 1, 3} {
		if err := q.Progress(b, 7, sh, 4, 4); err != nil {
			t.Fatal(err)
		}
	}
	if got := q.Stats().PendingSamples; got != 30-12 {
		t.Fatalf("pending %d, want 18", got)
	}
	if err := q.Append(body(3, 50), 10, 3); err != nil {
		t.Fatal(err)
	}

	q2 := openQ(t, dir, 1<<30, 1<<20, nil)
	defer q2.Close()
	if got := q2.Stats().PendingSamples; got != 40-12 {
		t.Fatalf("pending %d after restart, want 28", got)
	}
	b2, _, _ := q2.Next()
	if b2.start != b.start || b2.end != b.end || b2.layout != 7 || !slices.Equal(b2.done, []int{0, 2, 0, 1}) {
		t.Fatalf("batch after restart: [%d,%d) layout %d done %v; want [%d,%d) layout 7 done [0 2 0 1]", b2.start, b2.end, b2.layout, b2.done, b.start, b.end)
	}
	if err := q2.Commit(b2); err != nil {
		t.Fatal(err)
	}
	if got := q2.Stats().PendingSamples; got != 10 {
		t.Fatalf("pending %d after commit, want 10", got)
	}
	// Discarded progress counts its samples as pending again.
	b3, _, _ := q2.Next()
	_ = q2.Progress(b3, 7, 0, 4, 6)
	_ = q2.DiscardProgress(b3)
	if got := q2.Stats().PendingSamples; got != 10 {
		t.Fatalf("pending %d after discarding progress, want 10", got)
	}

	// The first cursor format: segment, offset, CRC.
	v1 := binary.LittleEndian.AppendUint64(nil, b.seg)
	v1 = binary.LittleEndian.AppendUint64(v1, uint64(b.end))
	v1 = binary.LittleEndian.AppendUint32(v1, crc32.Checksum(v1, castagnoli))
	if err := os.WriteFile(filepath.Join(dir, cursorFile), v1, 0o640); err != nil {
		t.Fatal(err)
	}
	q3 := openQ(t, dir, 1<<30, 1<<20, nil)
	defer q3.Close()
	equal(t, drain(t, q3), ids(3, 4))

	// A damaged cursor: from the oldest segment, logged.
	c := encodeCursor(position{seg: b.seg, off: b.start}, progress{start: position{seg: b.seg, off: b.start}, end: b.end, done: []int{1}})
	c[len(c)-5] ^= 1
	if err := os.WriteFile(filepath.Join(dir, cursorFile), c, 0o640); err != nil {
		t.Fatal(err)
	}
	var log logBuf
	q4 := openQ(t, dir, 1<<30, 1<<20, slog.New(slog.NewTextHandler(&log, nil)))
	defer q4.Close()
	if b4, _, _ := q4.Next(); b4.done != nil {
		t.Fatalf("progress kept from a damaged cursor: %v", b4.done)
	}
	if !strings.Contains(log.String(), "unreadable read position") {
		t.Fatalf("log: %q", log.String())
	}
}

// FuzzDecodeCursor: any cursor file decodes or fails cleanly, and what
// decodes encodes back to the same bytes (new format).
func FuzzDecodeCursor(f *testing.F) {
	p := position{seg: 3, off: 100}
	f.Add(encodeCursor(p, progress{}))
	f.Add(encodeCursor(p, progress{start: p, end: 200, layout: 9, done: []int{1, 0, 2, 0}, samples: 50}))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pos, pr, err := decodeCursor(b)
		if err != nil || len(b) == cursorV1Size {
			return
		}
		if pr.end != 0 && !pr.at(pos) {
			t.Fatalf("progress %+v not at %+v", pr, pos)
		}
		if again := encodeCursor(pos, pr); pr.end != 0 && !bytes.Equal(again, b) {
			t.Fatalf("re-encoded %x, was %x", again, b)
		}
	})
}
