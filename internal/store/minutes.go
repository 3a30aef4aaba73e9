package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// Minutes kept as samples arrive (issue #16).
//
// Read back from the raw tier, the hourly pass of 1 M series decodes an
// hour of raw chunks (3.6 G samples, ~13 GB at 1 M samples/s) while ingest
// goes on: paced to a quarter of its time it took 22 minutes, and the live
// view's p99 missed 50 ms all along (docs/benchmarks.md, "An hour and a
// quarter at 1 M samples/s"). The raw tier's appender sees every sample
// anyway, so the store keeps each raw series' current minute (min, max,
// sum, count: one 32-byte cell per series) as commits land, and writes a
// minute's aggregate to a spill file of its hour when the series' next
// minute begins. The hour's pass then reads those files (32 bytes per
// series-minute, ~2 GB for 1 M series) instead of the raw chunks, and
// writes the same blocks the raw read would.
//
// The aggregates are the raw read's, bit for bit: a value is counted as
// the tier stores and reads it back (encode, then decode), NaN is skipped,
// and a minute's samples are summed in time order. Whatever would break
// that sends a machine's hour back to the raw read: a sample older than
// its series' newest counted one (a replay into the out-of-order window)
// marks the series, and so its machine; a spill file that could not be
// written, or a series the head no longer knows, sends the whole hour. An
// hour is kept only when this process saw every sample of it: hours that
// begin after the newest sample the raw tier held at Open. The spill files
// live under <data-dir>/tsdb/rollup-minutes/ and are removed at Open.

const (
	minutePageBits  = 12 // cells per page: 4,096 series ids
	minutePageCells = 1 << minutePageBits
	minutePartBits  = 14 // series ids per spill file of an hour: 16,384
	minuteRecord    = 32 // bytes per series-minute in a spill file
	minuteFlushAt   = 64 << 10
	noMinute        = math.MinInt32
	minutesDir      = "rollup-minutes"
)

// minuteCell is one series' current minute.
type minuteCell struct {
	min, max, sum float64
	minute        int32  // minutes since the epoch; noMinute = none yet
	lastOff       uint16 // ms into the minute of the newest sample counted
	count         uint16 // 0: nothing held (none yet, or spilled by a close)
}

// minutePage holds the cells of 4,096 consecutive series ids.
type minutePage struct {
	mu     sync.Mutex
	newest int32 // the newest minute any cell began
	cells  [minutePageCells]minuteCell
}

func newMinutePage() *minutePage {
	p := &minutePage{newest: noMinute}
	for i := range p.cells {
		p.cells[i].minute = noMinute
	}
	return p
}

// pendingSample is a sample an appender took, counted at its Commit.
type pendingSample struct {
	ref storage.SeriesRef // with the scale in the top byte (scaledAppender)
	t   int64
	v   float64
}

var pendingPool = sync.Pool{New: func() any { return new([]pendingSample) }}

// minuteAggr is one series-minute read back from a spill file.
type minuteAggr struct {
	t int64 // the minute's start (ms)
	a aggr
}

// hourMinutes is one hour's spilled minutes, one file per 16,384 ids.
type hourMinutes struct {
	hour    int64
	dir     string
	parts   map[uint64]*minutePart
	tainted map[uint64]struct{} // series ids with a sample out of order
	bad     error               // a minute was lost: the hour is read back from raw
}

type minutePart struct {
	buf []byte
	f   *os.File
}

// minuteRoller keeps the raw tier's current minutes.
type minuteRoller struct {
	dir   string
	raw   *Tier
	log   *slog.Logger
	since int64 // the first hour (ms) all of whose samples this process sees

	pages atomic.Pointer[[]*minutePage]

	mu     sync.Mutex // guards the fields below and growing pages
	hours  map[int64]*hourMinutes
	closed int64 // minutes before this are closed: their aggregates are dropped
}

// newMinuteRoller starts keeping minutes of raw, whose newest sample
// stored so far is at newest (math.MinInt64: none).
func newMinuteRoller(dir string, raw *Tier, newest int64, log *slog.Logger) (*minuteRoller, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("clear %s: %w", dir, err)
	}
	r := &minuteRoller{dir: dir, raw: raw, log: log, since: math.MinInt64, hours: map[int64]*hourMinutes{}, closed: math.MinInt64}
	if newest != math.MinInt64 {
		r.since = floorTo(newest, hourMs) + hourMs
	}
	r.pages.Store(new([]*minutePage))
	return r, nil
}

// page returns the page of ids i<<minutePageBits..., making it.
func (r *minuteRoller) page(i uint64) *minutePage {
	if ps := *r.pages.Load(); i < uint64(len(ps)) && ps[i] != nil {
		return ps[i]
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ps := *r.pages.Load()
	if i < uint64(len(ps)) && ps[i] != nil {
		return ps[i]
	}
	grown := slices.Clone(ps)
	if i >= uint64(len(grown)) {
		grown = append(grown, make([]*minutePage, int(i)+1-len(grown))...)
	}
	grown[i] = newMinutePage()
	r.pages.Store(&grown)
	return grown[i]
}

// apply counts committed samples into their series' minutes.
func (r *minuteRoller) apply(buf []pendingSample) {
	var (
		pg  *minutePage
		pgi = ^uint64(0)
	)
	for _, p := range buf {
		if math.IsNaN(p.v) {
			continue // the raw read skips NaN (stale markers) too
		}
		id := uint64(p.ref & refIDMask)
		if i := id >> minutePageBits; i != pgi {
			if pg != nil {
				pg.mu.Unlock()
			}
			pgi, pg = i, r.page(i)
			pg.mu.Lock()
		}
		d := r.raw.at(refScale(p.ref), p.t)
		r.add(pg, id, p.t, decode(d, encode(d, p.v, false)))
	}
	if pg != nil {
		pg.mu.Unlock()
	}
}

// add counts v at t into id's cell; pg is locked.
func (r *minuteRoller) add(pg *minutePage, id uint64, t int64, v float64) {
	c := &pg.cells[id&(minutePageCells-1)]
	mt := floorTo(t, minuteMs)
	m, off := int32(mt/minuteMs), uint16(t-mt)
	switch {
	case c.count > 0 && m == c.minute:
		switch {
		case off > c.lastOff:
			c.min = min(c.min, v)
			c.max = max(c.max, v)
			c.sum += v
			c.count++
			c.lastOff = off
		case off < c.lastOff:
			r.taint(id, mt)
		}
		// off == lastOff: the TSDB kept one of two equal samples.
	case m > c.minute:
		if c.count > 0 {
			r.emit(id, c)
		}
		*c = minuteCell{min: v, max: v, minute: m, lastOff: off, count: 1}
		c.sum += v // as the raw read sums: 0 + v (so -0 sums to +0)
		pg.newest = max(pg.newest, m)
	case m < c.minute:
		r.taint(id, mt)
	}
	// m == c.minute with nothing held: a closed minute.
}

// emit writes c, id's finished minute, to its hour's spill file.
func (r *minuteRoller) emit(id uint64, c *minuteCell) {
	mt := int64(c.minute) * minuteMs
	hour := floorTo(mt, hourMs)
	r.mu.Lock()
	defer r.mu.Unlock()
	if hour < r.since || mt < r.closed {
		return
	}
	h := r.hourOf(hour)
	if h.bad != nil {
		return
	}
	pi := id >> minutePartBits
	p := h.parts[pi]
	if p == nil {
		p = &minutePart{}
		h.parts[pi] = p
	}
	var rec [minuteRecord]byte
	binary.LittleEndian.PutUint16(rec[0:], uint16(id&(1<<minutePartBits-1)))
	rec[2] = byte((mt - hour) / minuteMs)
	binary.LittleEndian.PutUint32(rec[4:], uint32(c.count))
	binary.LittleEndian.PutUint64(rec[8:], math.Float64bits(c.min))
	binary.LittleEndian.PutUint64(rec[16:], math.Float64bits(c.max))
	binary.LittleEndian.PutUint64(rec[24:], math.Float64bits(c.sum))
	p.buf = append(p.buf, rec[:]...)
	if len(p.buf) >= minuteFlushAt {
		r.flushPart(h, pi, p)
	}
}

// taint marks id's hour of mt: a sample came out of order.
func (r *minuteRoller) taint(id uint64, mt int64) {
	hour := floorTo(mt, hourMs)
	r.mu.Lock()
	defer r.mu.Unlock()
	if hour < r.since || mt < r.closed {
		return
	}
	r.hourOf(hour).tainted[id] = struct{}{}
}

// lose marks the hours of buf's samples as read back from raw: a commit
// failed, and what the TSDB kept of it is unknown.
func (r *minuteRoller) lose(buf []pendingSample, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range buf {
		if hour := floorTo(p.t, hourMs); hour >= r.since && p.t >= r.closed {
			if h := r.hourOf(hour); h.bad == nil {
				h.bad = fmt.Errorf("a commit failed: %w", err)
			}
		}
	}
}

// hourOf returns hour's minutes, making them; r.mu is held.
func (r *minuteRoller) hourOf(hour int64) *hourMinutes {
	h := r.hours[hour]
	if h == nil {
		h = &hourMinutes{hour: hour, dir: filepath.Join(r.dir, strconv.FormatInt(hour, 10)), parts: map[uint64]*minutePart{}, tainted: map[uint64]struct{}{}}
		r.hours[hour] = h
	}
	return h
}

// flushPart writes p's buffer to its file; r.mu is held. A failure loses
// the hour's minutes (it is read back from raw).
func (r *minuteRoller) flushPart(h *hourMinutes, pi uint64, p *minutePart) {
	if len(p.buf) == 0 {
		return
	}
	if p.f == nil {
		f, err := r.createPart(h, pi)
		if err != nil {
			r.lost(h, err)
			return
		}
		p.f = f
	}
	if _, err := p.f.Write(p.buf); err != nil {
		r.lost(h, err)
		return
	}
	p.buf = p.buf[:0]
}

func (r *minuteRoller) createPart(h *hourMinutes, pi uint64) (*os.File, error) {
	if err := os.MkdirAll(h.dir, 0o750); err != nil {
		return nil, err
	}
	return os.OpenFile(filepath.Join(h.dir, strconv.FormatUint(pi, 10)), os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o640)
}

// lost drops h's minutes after err; r.mu is held.
func (r *minuteRoller) lost(h *hourMinutes, err error) {
	if h.bad == nil {
		r.log.Warn("rollup: an hour's minutes could not be spilled; it will be read back from the raw tier", "hour", h.hour, "err", err)
		h.bad = err
	}
	h.closeFiles()
	h.parts = map[uint64]*minutePart{}
}

func (h *hourMinutes) closeFiles() {
	for _, p := range h.parts {
		if p.f != nil {
			_ = p.f.Close()
			p.f = nil
		}
		p.buf = nil
	}
}

// eligible reports whether the minutes of the hour starting at hour can
// stand in for a raw read: this process saw all of its samples and the
// hour is not closed yet.
func (r *minuteRoller) eligible(hour int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return hour >= r.since && hour >= r.closed
}

// take closes every minute before end, spilling what cells still hold,
// and returns the spilled minutes of the hour [end-1h, end) (nil when no
// sample of it arrived), its files flushed. Minutes of earlier hours are
// dropped (those hours are read back from raw), and so is any aggregate
// of a closed minute that arrives later. The caller removes the hour's
// files (drop) once it has read them.
func (r *minuteRoller) take(end int64) *hourMinutes {
	idle := int32(floorTo(end-2*hourMs, minuteMs) / minuteMs)
	var free []int
	for i, pg := range *r.pages.Load() {
		if pg == nil {
			continue
		}
		base := uint64(i) << minutePageBits
		held := false
		pg.mu.Lock()
		for j := range pg.cells {
			c := &pg.cells[j]
			if c.count > 0 && int64(c.minute)*minuteMs < end {
				r.emit(base|uint64(j), c)
				c.count = 0
			}
			held = held || c.count > 0
		}
		if !held && pg.newest < idle {
			free = append(free, i)
		}
		pg.mu.Unlock()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(free) > 0 {
		// Pages whose series have been silent for two hours: a series that
		// speaks again starts a new minute in a new page.
		ps := slices.Clone(*r.pages.Load())
		for _, i := range free {
			ps[i] = nil
		}
		r.pages.Store(&ps)
	}
	r.closed = max(r.closed, end)
	var out *hourMinutes
	for hour, h := range r.hours {
		if hour >= end {
			continue
		}
		delete(r.hours, hour)
		if hour == end-hourMs && h.bad == nil {
			for pi, p := range h.parts {
				r.flushPart(h, pi, p)
			}
		}
		if hour == end-hourMs {
			out = h
			h.closeFiles()
			continue
		}
		h.closeFiles()
		_ = os.RemoveAll(h.dir)
	}
	return out
}

// expire closes every minute before before and removes the spill files
// of the hours that end by then: no pass takes them any more (a pass that
// fell two hours behind reads the raw tier back), and an hour's files are
// ~2 GB at 1 M series.
func (r *minuteRoller) expire(before int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if before <= r.closed {
		return
	}
	r.closed = before
	for hour, h := range r.hours {
		if hour+hourMs <= before {
			delete(r.hours, hour)
			h.closeFiles()
			_ = os.RemoveAll(h.dir)
		}
	}
}

// drop removes h's files.
func (h *hourMinutes) drop() {
	if h != nil {
		_ = os.RemoveAll(h.dir)
	}
}

// errMinutesLost: an hour's minutes cannot stand in for the raw read.
var errMinutesLost = errors.New("rollup: minutes lost")

// each calls fn with every spilled series of h in order of id, with its
// minutes in time order. A series whose minute appears twice (it should
// not) ends the walk with errMinutesLost.
func (h *hourMinutes) each(fn func(id uint64, mins []minuteAggr) error) error {
	if h.bad != nil {
		return fmt.Errorf("%w: %v", errMinutesLost, h.bad)
	}
	parts := make([]uint64, 0, len(h.parts))
	for pi := range h.parts {
		parts = append(parts, pi)
	}
	slices.Sort(parts)
	var (
		buf   []byte
		order []int32
		start = make([]int32, 1<<minutePartBits+1)
		mins  []minuteAggr
	)
	for _, pi := range parts {
		b, err := readFileInto(filepath.Join(h.dir, strconv.FormatUint(pi, 10)), buf)
		if err != nil {
			return fmt.Errorf("%w: %v", errMinutesLost, err)
		}
		buf = b
		if len(buf)%minuteRecord != 0 {
			return fmt.Errorf("%w: spill file %d of hour %d is %d bytes", errMinutesLost, pi, h.hour, len(buf))
		}
		// Group the records by id (a counting sort, stable), then each
		// id's by minute.
		n := len(buf) / minuteRecord
		clear(start)
		for i := range n {
			start[binary.LittleEndian.Uint16(buf[i*minuteRecord:])+1]++
		}
		for i := 1; i < len(start); i++ {
			start[i] += start[i-1]
		}
		order = slices.Grow(order[:0], n)[:n]
		next := slices.Clone(start)
		for i := range n {
			l := binary.LittleEndian.Uint16(buf[i*minuteRecord:])
			order[next[l]] = int32(i)
			next[l]++
		}
		for l := 0; l < 1<<minutePartBits; l++ {
			if start[l] == start[l+1] {
				continue
			}
			mins = mins[:0]
			for _, i := range order[start[l]:start[l+1]] {
				rec := buf[int(i)*minuteRecord:]
				mins = append(mins, minuteAggr{
					t: h.hour + int64(rec[2])*minuteMs,
					a: aggr{
						count: float64(binary.LittleEndian.Uint32(rec[4:])),
						min:   math.Float64frombits(binary.LittleEndian.Uint64(rec[8:])),
						max:   math.Float64frombits(binary.LittleEndian.Uint64(rec[16:])),
						sum:   math.Float64frombits(binary.LittleEndian.Uint64(rec[24:])),
					},
				})
			}
			slices.SortFunc(mins, func(a, b minuteAggr) int { return int(a.t - b.t) })
			for i := 1; i < len(mins); i++ {
				if mins[i].t == mins[i-1].t {
					return fmt.Errorf("%w: series %d has minute %d twice", errMinutesLost, pi<<minutePartBits|uint64(l), mins[i].t)
				}
			}
			if err := fn(pi<<minutePartBits|uint64(l), mins); err != nil {
				return err
			}
		}
	}
	return nil
}

// readFileInto reads the file at path into buf's storage.
func readFileInto(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return buf, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return buf, err
	}
	buf = slices.Grow(buf[:0], int(st.Size()))[:st.Size()]
	_, err = io.ReadFull(f, buf)
	return buf, err
}

// minuteLabels holds the four rollup label sets of the series being rolled
// up from the minutes, rebuilt in place for each series: the pass of 1 M
// raw series built 4 M label sets (~100 B each) that were garbage as soon
// as the series was written.
type minuteLabels struct {
	b     [len(rollupKinds)]labels.ScratchBuilder
	lsets [len(rollupKinds)]labels.Labels
}

// rollupMinutes appends one series' minutes (labels lset) as the four
// rollup series, as rollupRawSeries does from its raw samples. The label
// sets it passes to app live in l and are overwritten by the next call:
// app must not keep them (the hour block does not: it knows a series by
// its place, hourblock.go).
func rollupMinutes(app storage.Appender, l *minuteLabels, lset labels.Labels, mins []minuteAggr) (int, int, error) {
	w := bucketWriter{app: app}
	for k, kind := range rollupKinds {
		w.lsets[k] = rollupLabels(&l.b[k], &l.lsets[k], lset, kind)
	}
	for _, m := range mins {
		if err := w.write(m.t, m.a.values()); err != nil {
			return w.n, w.rejected, err
		}
	}
	return w.n, w.rejected, nil
}
