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
	// maxPayload bounds one record (a store commit is a group of at most
	// 10,000 samples or one agent batch, well under this); a larger
	// length is corruption.
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
// position, with the progress of the batch at it (which requests are done),
// is written (to a temporary file, renamed) after every Progress and
// Commit, without fsync: after a power loss, a batch may be sent twice.
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
	prog     progress   // requests of the batch at cur already done
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

// progress is how much of the batch at the read position the sender has
// done (accepted, or refused for good), so that a restart does not send it
// again: the batch's extent, the sender's split layout (opaque to the
// queue), the requests done per shard and their samples. It counts only
// while start is the read position.
type progress struct {
	start   position
	end     int64 // 0: no progress
	layout  uint64
	done    []int
	samples int64
}

func (p progress) at(cur position) bool { return p.end > 0 && p.start == cur }

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
	// Progress saved for this batch (see Queue.Progress): the layout it
	// was saved with and the requests done per shard; nil when none.
	layout uint64
	done   []int
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
	cur, prog, ok := q.readCursor()
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
	if prog.at(cur) && len(q.segs) > 0 && q.segs[0].id == cur.seg && prog.end <= q.segs[0].size {
		q.prog = prog
	} else if prog.end > 0 {
		q.log.Warn("remote-write queue: saved progress does not match the queue; resending the batch at the read position whole (the receiver may get part of it twice)", "dir", q.dir)
	}
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
	q.pendingS -= q.prog.samples
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
	if err := q.saveCursor(); err != nil {
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

// The cursor file: cursorMagic, segment (uint64 LE), offset (uint64 LE),
// then the progress of the batch at that position: its end offset (uint64
// LE, 0 = none), the sender's layout (uint64 LE), samples done (uint64 LE),
// the number of shards (uint32 LE, at most maxCursorShards) and the
// requests done per shard (uint32 LE each); last the CRC-32C of everything
// before it (uint32 LE). The first format (before progress was saved) was
// segment, offset and CRC, 20 bytes: it is still read, without progress.
const (
	cursorMagic     = "RWQC\x02\x00\x00\x00"
	cursorV1Size    = 20
	cursorFixed     = 8 + 8 + 8 + 8 + 8 + 8 + 4 // up to the per-shard counts
	maxCursorShards = 1024
)

// readCursor reads the committed read position and progress; false when
// there is none or it is unreadable (then reading restarts at the oldest
// segment).
func (q *Queue) readCursor() (position, progress, bool) {
	b, err := os.ReadFile(filepath.Join(q.dir, cursorFile))
	if errors.Is(err, os.ErrNotExist) {
		return position{}, progress{}, false
	}
	if err == nil {
		var p position
		var pr progress
		if p, pr, err = decodeCursor(b); err == nil {
			return p, pr, true
		}
	}
	q.log.Warn("remote-write queue: unreadable read position; resending from the oldest segment (the receiver may get samples twice)", "dir", q.dir, "err", err)
	return position{}, progress{}, false
}

var errBadCursor = errors.New("bad cursor file")

// decodeCursor decodes a cursor file of either format.
func decodeCursor(b []byte) (position, progress, error) {
	le := binary.LittleEndian
	if len(b) < 4 || crc32.Checksum(b[:len(b)-4], castagnoli) != le.Uint32(b[len(b)-4:]) {
		return position{}, progress{}, fmt.Errorf("%w: %d bytes, checksum mismatch or too short", errBadCursor, len(b))
	}
	if len(b) == cursorV1Size {
		return position{seg: le.Uint64(b), off: int64(le.Uint64(b[8:]))}, progress{}, nil
	}
	if len(b) < cursorFixed+4 || string(b[:8]) != cursorMagic {
		return position{}, progress{}, fmt.Errorf("%w: unknown format", errBadCursor)
	}
	p := position{seg: le.Uint64(b[8:]), off: int64(le.Uint64(b[16:]))}
	pr := progress{start: p, end: int64(le.Uint64(b[24:])), layout: le.Uint64(b[32:]), samples: int64(le.Uint64(b[40:]))}
	n := le.Uint32(b[48:])
	if p.off < 0 || n > maxCursorShards || len(b) != cursorFixed+4*int(n)+4 {
		return position{}, progress{}, fmt.Errorf("%w: bad offset, shard count or size", errBadCursor)
	}
	if pr.end == 0 {
		return p, progress{}, nil
	}
	if pr.end <= p.off || pr.samples < 0 || n == 0 {
		return position{}, progress{}, fmt.Errorf("%w: bad progress", errBadCursor)
	}
	pr.done = make([]int, n)
	for i := range pr.done {
		pr.done[i] = int(le.Uint32(b[cursorFixed+4*i:]))
	}
	return p, pr, nil
}

// encodeCursor encodes p and its progress pr (when pr.at(p)).
func encodeCursor(p position, pr progress) []byte {
	le := binary.LittleEndian
	b := append([]byte(nil), cursorMagic...)
	b = le.AppendUint64(b, p.seg)
	b = le.AppendUint64(b, uint64(p.off))
	if !pr.at(p) {
		pr = progress{}
	}
	b = le.AppendUint64(b, uint64(pr.end))
	b = le.AppendUint64(b, pr.layout)
	b = le.AppendUint64(b, uint64(pr.samples))
	b = le.AppendUint32(b, uint32(len(pr.done)))
	for _, d := range pr.done {
		b = le.AppendUint32(b, uint32(d))
	}
	return le.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// saveCursor saves the read position and its progress (temporary file,
// renamed). The state is taken and written under cursorMu, so the file
// always ends with the latest state.
func (q *Queue) saveCursor() error {
	q.cursorMu.Lock()
	defer q.cursorMu.Unlock()
	q.mu.Lock()
	b := encodeCursor(q.cur, q.prog)
	q.mu.Unlock()
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
		lost := s.samples - q.curRead - q.dropProgress()
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
		prog := q.prog
		q.mu.Unlock()

		end := size
		if prog.at(cur) {
			end = prog.end
		}
		b, err := q.read(cur, end)
		if err != nil {
			q.log.Warn("remote-write queue: unreadable record; skipping the rest of its segment", "dir", q.dir, "segment", cur.seg, "offset", cur.off, "err", err)
			q.mu.Lock()
			if q.cur == cur {
				lost := s.samples - q.curRead - q.dropProgress()
				q.cur.off = size
				q.curRead = s.samples
				q.pendingS -= lost
				q.dropped += lost
			}
			q.mu.Unlock()
			continue
		}
		q.mu.Lock()
		if q.cur == cur && q.prog.at(cur) {
			if b.end == q.prog.end {
				b.layout, b.done = q.prog.layout, slices.Clone(q.prog.done)
			} else {
				q.log.Warn("remote-write queue: saved progress does not match the records; resending the batch whole (the receiver may get part of it twice)", "dir", q.dir, "segment", cur.seg, "offset", cur.off)
				q.pendingS += q.dropProgress()
			}
		}
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

// dropProgress forgets the progress of the batch at the read position and
// returns its samples done (0 when none). q.mu is held.
func (q *Queue) dropProgress() int64 {
	if !q.prog.at(q.cur) {
		q.prog = progress{}
		return 0
	}
	n := q.prog.samples
	q.prog = progress{}
	return n
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
	done := q.dropProgress()
	q.cur.off = b.end
	q.curRead += int64(b.Samples)
	q.pendingS -= int64(b.Samples) - done
	q.oldestTs = 0
	q.mu.Unlock()
	return q.saveCursor()
}

// Progress records that one more request of shard shard (of shards) of b,
// of samples samples, is done, and saves it with the read position, so that
// a restart skips it: Next then returns b again with its layout and
// requests done per shard. layout is the sender's, opaque to the queue: a
// sender that cuts batches otherwise ignores the progress (Discard). A
// batch no longer at the read position changes nothing.
func (q *Queue) Progress(b Batch, layout uint64, shard, shards, samples int) error {
	q.mu.Lock()
	if q.cur.seg != b.seg || q.cur.off != b.start || shard < 0 || shard >= shards || shards > maxCursorShards {
		q.mu.Unlock()
		return nil
	}
	if !q.prog.at(q.cur) || q.prog.end != b.end || q.prog.layout != layout || len(q.prog.done) != shards {
		q.pendingS += q.dropProgress()
		q.prog = progress{start: q.cur, end: b.end, layout: layout, done: make([]int, shards)}
	}
	q.prog.done[shard]++
	q.prog.samples += int64(samples)
	q.pendingS -= int64(samples)
	q.mu.Unlock()
	return q.saveCursor()
}

// DiscardProgress forgets the progress saved for b (its requests will all
// be sent again).
func (q *Queue) DiscardProgress(b Batch) error {
	q.mu.Lock()
	if q.cur.seg != b.seg || q.cur.off != b.start {
		q.mu.Unlock()
		return nil
	}
	q.pendingS += q.dropProgress()
	q.mu.Unlock()
	return q.saveCursor()
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
