// Package remotewrite forwards every sample the hub stores to Prometheus
// remote-write 1.0 receivers: a Tee appender encodes each store commit once
// into a durable on-disk Queue per target, and a Sender per target drains
// its queue over HTTP with retries.
package remotewrite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Queue defaults.
const (
	DefaultMaxQueueBytes = 8 << 30 // 8 GiB per target: ~1.7 h at 100,000 samples/s
	defaultSegmentBytes  = 16 << 20
	// MinMaxQueueBytes is the smallest cap a queue takes: room for a few
	// segments.
	MinMaxQueueBytes = 1 << 20
)

// A record on disk is a frame: payload length (uint32 LE), CRC-32C of the
// payload (uint32 LE), then the payload: samples (uint32 LE), the oldest
// sample's timestamp (int64 LE, ms since epoch), then the body (a
// snappy-compressed prompb.WriteRequest).
const (
	frameHeader   = 8
	payloadHeader = 12
	// maxPayload bounds one record (a store commit is at most ~200,000
	// samples, well under this); a larger length is corruption.
	maxPayload = 256 << 20
	segSuffix  = ".seg"
	cursorFile = "cursor"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// QueueOptions configure OpenQueue.
type QueueOptions struct {
	Dir string // the queue's own directory; created if missing
	// MaxBytes caps the segment files on disk; beyond it the oldest
	// segment is dropped and its unsent samples counted. 0 =
	// DefaultMaxQueueBytes; at least MinMaxQueueBytes.
	MaxBytes int64
	// SegmentBytes is the size at which a new segment file starts; 0 =
	// 16 MiB or MaxBytes/8, whichever is smaller.
	SegmentBytes int64
	Logger       *slog.Logger // nil = discard
}

// Queue is a durable FIFO of encoded commits in segment files, with a
// committed read position. Append is safe for concurrent use; Next and
// Commit belong to one reader goroutine.
//
// Durability: Append writes each record with one write(2) before it returns
// (a killed process loses nothing appended; the operating system writes it
// out), as the store's own WAL does. A full segment is fsynced in the
// background when the next starts; Close fsyncs the last. The read
// position is written (to a temporary file, renamed) after every Commit,
// without fsync: after a power loss, a batch may be sent twice.
type Queue struct {
	dir     string
	maxB    int64
	segB    int64
	log     *slog.Logger
	syncers sync.WaitGroup

	// mu protects every field below.
	mu       sync.Mutex
	segs     []*segment // oldest first; the last is the head, written to
	head     *os.File   // the head segment, open for appending
	cur      position   // next record to read
	curRead  int64      // samples of cur's segment before cur.off
	pendingS int64      // samples at or after cur
	total    int64      // bytes of every segment on disk
	dropped  int64      // samples dropped because the queue was full
	oldestTs int64      // oldest sample of the record at cur, when known
	frame    []byte     // frame buffer of Append
	closed   bool
	notify   chan struct{} // signalled (cap 1) after each Append

	// cursorMu serialises writes of the cursor file.
	cursorMu sync.Mutex

	// The reader's own file, of segment rseg; used by Next only.
	rfile *os.File
	rseg  uint64
}

type segment struct {
	id      uint64
	size    int64 // bytes of whole records
	samples int64 // samples of every record in it
}

type position struct {
	seg uint64
	off int64
}

// Record is one queued commit.
type Record struct {
	Samples int
	MinTs   int64  // oldest sample, ms since epoch
	Body    []byte // snappy-compressed prompb.WriteRequest
}

// Batch is consecutive records of one segment, returned by Next.
type Batch struct {
	Records []Record
	Samples int
	seg     uint64
	start   int64
	end     int64
}

// Stats is a queue's state.
type Stats struct {
	PendingBytes   int64 // bytes from the read position to the end
	PendingSamples int64
	Dropped        int64 // samples dropped since open because the queue was full
	OldestTs       int64 // oldest unsent sample's timestamp (ms), 0 when none pending
}

// OpenQueue opens or creates the queue in opts.Dir. It checks every
// record's CRC: a torn or corrupt tail of a segment is truncated (and
// logged), the records before it kept. Appends go to a new segment.
func OpenQueue(opts QueueOptions) (*Queue, error) {
	if opts.MaxBytes == 0 {
		opts.MaxBytes = DefaultMaxQueueBytes
	}
	if opts.MaxBytes < MinMaxQueueBytes {
		return nil, fmt.Errorf("remote-write queue %s: max bytes %d below %d", opts.Dir, opts.MaxBytes, MinMaxQueueBytes)
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = min(defaultSegmentBytes, opts.MaxBytes/8)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("create remote-write queue %s: %w", opts.Dir, err)
	}
	q := &Queue{dir: opts.Dir, maxB: opts.MaxBytes, segB: opts.SegmentBytes, log: opts.Logger, notify: make(chan struct{}, 1)}
	ids, err := q.listSegments()
	if err != nil {
		return nil, err
	}
	cur, ok := q.readCursor()
	if !ok && len(ids) > 0 {
		cur = position{seg: ids[0]}
	}
	for _, id := range ids {
		if id < cur.seg {
			if err := os.Remove(q.segPath(id)); err != nil {
				return nil, fmt.Errorf("remove sent remote-write segment: %w", err)
			}
			continue
		}
		seg, err := q.scanSegment(id, cur)
		if err != nil {
			return nil, err
		}
		q.segs = append(q.segs, seg)
		q.total += seg.size
	}
	if len(q.segs) == 0 || cur.seg < q.segs[0].id {
		if len(q.segs) > 0 {
			cur = position{seg: q.segs[0].id}
		}
	}
	if len(q.segs) > 0 && cur.seg == q.segs[0].id && cur.off > q.segs[0].size {
		q.log.Warn("remote-write queue: read position beyond the segment's end; resuming at the next segment", "dir", q.dir, "segment", cur.seg)
		cur.off = q.segs[0].size
	}
	q.cur = cur
	q.pendingS = 0
	for i, s := range q.segs {
		q.pendingS += s.samples
		if i == 0 && s.id == cur.seg && cur.off > 0 {
			read, err := q.samplesBefore(s.id, cur.off)
			if err != nil {
				return nil, err
			}
			q.pendingS -= read
			q.curRead = read
		}
	}
	// Segment ids only grow, also past a read position whose segments are
	// gone, so that no new segment sorts before the read position.
	next := max(cur.seg, 1)
	if len(q.segs) > 0 {
		next = max(next, q.segs[len(q.segs)-1].id+1)
	}
	if len(q.segs) == 0 {
		q.cur = position{seg: next}
	}
	if err := q.startSegment(next); err != nil {
		return nil, err
	}
	if err := q.writeCursor(q.cur); err != nil {
		return nil, err
	}
	q.mu.Lock()
	q.enforceCap()
	q.mu.Unlock()
	return q, nil
}

func (q *Queue) segPath(id uint64) string {
	return filepath.Join(q.dir, fmt.Sprintf("%020d%s", id, segSuffix))
}

func (q *Queue) listSegments() ([]uint64, error) {
	ents, err := os.ReadDir(q.dir)
	if err != nil {
		return nil, fmt.Errorf("read remote-write queue %s: %w", q.dir, err)
	}
	var ids []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), segSuffix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		id, err := strconv.ParseUint(name, 10, 64)
		if err != nil || id == 0 {
			q.log.Warn("remote-write queue: ignoring a file that is not a segment", "file", filepath.Join(q.dir, e.Name()))
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// scanSegment checks a segment's records, truncating a corrupt tail, and
// counts its samples.
func (q *Queue) scanSegment(id uint64, cur position) (*segment, error) {
	path := q.segPath(id)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read remote-write segment %s: %w", path, err)
	}
	seg := &segment{id: id}
	off := 0
	for off < len(data) {
		rec, n, err := decodeFrame(data[off:])
		if err != nil {
			q.log.Warn("remote-write queue: corrupt or torn record; truncating the segment there (the records after it are lost)",
				"segment", path, "offset", off, "bytes_lost", len(data)-off, "err", err)
			if err := os.Truncate(path, int64(off)); err != nil {
				return nil, fmt.Errorf("truncate remote-write segment %s: %w", path, err)
			}
			break
		}
		seg.samples += int64(rec.Samples)
		off += n
	}
	seg.size = int64(off)
	return seg, nil
}

// samplesBefore counts the samples of segment id's records before off.
func (q *Queue) samplesBefore(id uint64, off int64) (int64, error) {
	data, err := os.ReadFile(q.segPath(id))
	if err != nil {
		return 0, fmt.Errorf("read remote-write segment: %w", err)
	}
	var n int64
	for p := 0; int64(p) < off && p < len(data); {
		rec, size, err := decodeFrame(data[p:])
		if err != nil {
			break
		}
		n += int64(rec.Samples)
		p += size
	}
	return n, nil
}

// errCorrupt marks a frame that fails its checks.
var errCorrupt = errors.New("corrupt record")

// decodeFrame decodes the frame at the start of b and returns its size.
// Body aliases b.
func decodeFrame(b []byte) (Record, int, error) {
	if len(b) < frameHeader {
		return Record{}, 0, fmt.Errorf("%w: torn header (%d bytes)", errCorrupt, len(b))
	}
	n := binary.LittleEndian.Uint32(b)
	sum := binary.LittleEndian.Uint32(b[4:])
	if n < payloadHeader || n > maxPayload {
		return Record{}, 0, fmt.Errorf("%w: length %d", errCorrupt, n)
	}
	if uint64(len(b)-frameHeader) < uint64(n) {
		return Record{}, 0, fmt.Errorf("%w: torn record (%d of %d bytes)", errCorrupt, len(b)-frameHeader, n)
	}
	p := b[frameHeader : frameHeader+int(n)]
	if crc32.Checksum(p, castagnoli) != sum {
		return Record{}, 0, fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}
	return Record{
		Samples: int(binary.LittleEndian.Uint32(p)),
		MinTs:   int64(binary.LittleEndian.Uint64(p[4:])),
		Body:    p[payloadHeader:],
	}, frameHeader + int(n), nil
}

// appendFrame appends rec's frame to dst.
func appendFrame(dst []byte, samples int, minTs int64, body []byte) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(payloadHeader+len(body)))
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(samples))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(minTs))
	dst = append(dst, body...)
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+frameHeader:], castagnoli))
	return dst
}

// readCursor reads the committed read position; false when there is none
// or it is unreadable (then reading restarts at the oldest segment).
func (q *Queue) readCursor() (position, bool) {
	b, err := os.ReadFile(filepath.Join(q.dir, cursorFile))
	if errors.Is(err, os.ErrNotExist) {
		return position{}, false
	}
	if err != nil || len(b) != 20 || crc32.Checksum(b[:16], castagnoli) != binary.LittleEndian.Uint32(b[16:]) {
		q.log.Warn("remote-write queue: unreadable read position; resending from the oldest segment (the receiver may get samples twice)", "dir", q.dir, "err", err)
		return position{}, false
	}
	return position{seg: binary.LittleEndian.Uint64(b), off: int64(binary.LittleEndian.Uint64(b[8:]))}, true
}

// writeCursor saves p (temporary file, renamed).
func (q *Queue) writeCursor(p position) error {
	q.cursorMu.Lock()
	defer q.cursorMu.Unlock()
	b := binary.LittleEndian.AppendUint64(nil, p.seg)
	b = binary.LittleEndian.AppendUint64(b, uint64(p.off))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	tmp := filepath.Join(q.dir, cursorFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return fmt.Errorf("write remote-write read position: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(q.dir, cursorFile)); err != nil {
		return fmt.Errorf("write remote-write read position: %w", err)
	}
	return nil
}

// startSegment creates segment id and makes it the head.
func (q *Queue) startSegment(id uint64) error {
	f, err := os.OpenFile(q.segPath(id), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("create remote-write segment: %w", err)
	}
	q.head = f
	q.segs = append(q.segs, &segment{id: id})
	return nil
}

// Append queues one encoded commit of samples samples, the oldest at minTs
// (ms since epoch). It never waits for the reader: when the queue is over
// its cap, the oldest segment is dropped and its unsent samples counted.
func (q *Queue) Append(body []byte, samples int, minTs int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return errors.New("remote-write queue closed")
	}
	if payloadHeader+len(body) > maxPayload {
		return fmt.Errorf("remote-write record of %d bytes over the %d-byte limit", len(body), maxPayload)
	}
	head := q.segs[len(q.segs)-1]
	if head.size > 0 && head.size+int64(frameHeader+payloadHeader+len(body)) > q.segB {
		if err := q.rotate(); err != nil {
			return err
		}
		head = q.segs[len(q.segs)-1]
	}
	q.frame = appendFrame(q.frame[:0], samples, minTs, body)
	if n, err := q.head.Write(q.frame); err != nil {
		if n > 0 {
			// Keep the segment whole: drop the partial frame.
			_ = q.head.Truncate(head.size)
		}
		return fmt.Errorf("append to remote-write queue %s: %w", q.dir, err)
	}
	head.size += int64(len(q.frame))
	head.samples += int64(samples)
	q.total += int64(len(q.frame))
	q.pendingS += int64(samples)
	if cap(q.frame) > 8<<20 {
		q.frame = nil // do not keep a huge buffer
	}
	q.enforceCap()
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return nil
}

// rotate starts the next segment; the full one is fsynced and closed in
// the background. q.mu is held.
func (q *Queue) rotate() error {
	old := q.head
	if err := q.startSegment(q.segs[len(q.segs)-1].id + 1); err != nil {
		return err
	}
	q.syncers.Go(func() {
		if err := old.Sync(); err != nil {
			q.log.Warn("remote-write queue: fsync of a full segment failed", "file", old.Name(), "err", err)
		}
		_ = old.Close()
	})
	return nil
}

// enforceCap drops the oldest segments while the queue is over its cap.
// q.mu is held.
func (q *Queue) enforceCap() {
	for q.total > q.maxB && len(q.segs) > 1 {
		s := q.segs[0]
		lost := s.samples - q.curRead
		if err := os.Remove(q.segPath(s.id)); err != nil {
			q.log.Error("remote-write queue full: cannot remove the oldest segment", "err", err)
			return
		}
		q.segs = q.segs[1:]
		q.total -= s.size
		q.dropped += lost
		q.pendingS -= lost
		q.cur = position{seg: q.segs[0].id}
		q.curRead = 0
		q.oldestTs = 0
		q.log.Warn("remote-write queue full: dropped the oldest unsent samples", "dir", q.dir, "samples", lost, "max_bytes", q.maxB)
	}
}

// Notify is signalled after each Append.
func (q *Queue) Notify() <-chan struct{} { return q.notify }

// maxBatchBytes bounds the records (on disk) one Next returns, unless the
// first record alone is larger.
const maxBatchBytes = 1 << 20

// Next returns the records at the read position, up to about 1 MiB, all
// from one segment; ok is false when nothing is pending. A corrupt record
// (the disk changed under the queue) ends the segment: the rest of it is
// skipped and logged.
func (q *Queue) Next() (b Batch, ok bool, err error) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return Batch{}, false, errors.New("remote-write queue closed")
		}
		s := q.segs[0]
		cur := q.cur
		last := len(q.segs) == 1
		if cur.off >= s.size {
			if last {
				q.mu.Unlock()
				return Batch{}, false, nil
			}
			q.removeFirst()
			q.mu.Unlock()
			continue
		}
		size := s.size
		q.mu.Unlock()

		b, err := q.read(cur, size)
		if err != nil {
			q.log.Warn("remote-write queue: unreadable record; skipping the rest of its segment", "dir", q.dir, "segment", cur.seg, "offset", cur.off, "err", err)
			q.mu.Lock()
			if q.cur == cur {
				lost := s.samples - q.curRead
				q.cur.off = size
				q.curRead = s.samples
				q.pendingS -= lost
				q.dropped += lost
			}
			q.mu.Unlock()
			continue
		}
		q.mu.Lock()
		if q.cur == cur {
			q.oldestTs = b.Records[0].MinTs
			for _, r := range b.Records {
				q.oldestTs = min(q.oldestTs, r.MinTs)
			}
		}
		q.mu.Unlock()
		return b, true, nil
	}
}

// removeFirst deletes the first segment, fully read. q.mu is held.
func (q *Queue) removeFirst() {
	s := q.segs[0]
	if err := os.Remove(q.segPath(s.id)); err != nil {
		q.log.Warn("remote-write queue: cannot remove a sent segment", "err", err)
	}
	q.segs = q.segs[1:]
	q.total -= s.size
	q.cur = position{seg: q.segs[0].id}
	q.curRead = 0
}

// read reads whole records of segment cur.seg from cur.off up to end.
func (q *Queue) read(cur position, end int64) (Batch, error) {
	if q.rfile == nil || q.rseg != cur.seg {
		if q.rfile != nil {
			_ = q.rfile.Close()
			q.rfile = nil
		}
		f, err := os.Open(q.segPath(cur.seg))
		if err != nil {
			return Batch{}, err
		}
		q.rfile, q.rseg = f, cur.seg
	}
	n := min(end-cur.off, maxBatchBytes)
	buf := make([]byte, n)
	if _, err := q.rfile.ReadAt(buf, cur.off); err != nil && !errors.Is(err, io.EOF) {
		return Batch{}, err
	}
	if len(buf) >= frameHeader {
		if need := int64(frameHeader) + int64(binary.LittleEndian.Uint32(buf)); need > n && need <= end-cur.off {
			buf = make([]byte, need)
			if _, err := q.rfile.ReadAt(buf, cur.off); err != nil && !errors.Is(err, io.EOF) {
				return Batch{}, err
			}
		}
	}
	b := Batch{seg: cur.seg, start: cur.off, end: cur.off}
	for p := 0; p < len(buf); {
		rec, size, err := decodeFrame(buf[p:])
		if err != nil {
			if len(b.Records) > 0 {
				break // the next record lies beyond this read, or is corrupt: the next read tells
			}
			return Batch{}, err
		}
		b.Records = append(b.Records, rec)
		b.Samples += rec.Samples
		p += size
		b.end += int64(size)
	}
	return b, nil
}

// Commit marks b sent (or given up): the read position moves past it and is
// saved. A batch whose segment was dropped meanwhile (queue full) changes
// nothing.
func (q *Queue) Commit(b Batch) error {
	q.mu.Lock()
	if q.cur.seg != b.seg || q.cur.off != b.start {
		q.mu.Unlock()
		return nil
	}
	q.cur.off = b.end
	q.curRead += int64(b.Samples)
	q.pendingS -= int64(b.Samples)
	q.oldestTs = 0
	p := q.cur
	q.mu.Unlock()
	return q.writeCursor(p)
}

// Current reports whether b is still the batch at the read position (not
// dropped because the queue was full).
func (q *Queue) Current(b Batch) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.cur.seg == b.seg && q.cur.off == b.start
}

// Stats returns the queue's state.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	st := Stats{PendingSamples: q.pendingS, Dropped: q.dropped}
	st.PendingBytes = q.total - q.cur.off
	if q.pendingS > 0 {
		st.OldestTs = q.oldestTs
	}
	return st
}

// Close fsyncs and closes the head segment and waits for background
// fsyncs. Appends after Close fail.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	err := q.head.Sync()
	err = errors.Join(err, q.head.Close())
	if q.rfile != nil {
		_ = q.rfile.Close()
	}
	q.mu.Unlock()
	q.syncers.Wait()
	if err != nil {
		return fmt.Errorf("close remote-write queue %s: %w", q.dir, err)
	}
	return nil
}
