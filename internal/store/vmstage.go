package store

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	vmstorage "github.com/VictoriaMetrics/VictoriaMetrics/lib/storage"
)

// The VM raw tier hands committed samples to the engine through a stage,
// series by series, instead of in commit order. The engine looks each row's
// series up by its name (a hash-table probe that misses the CPU caches at
// hundreds of thousands of series: a quarter of the hub's CPU at 260,000
// series in commit order) unless the row before it had the same name, and
// cuts a block per series from what it buffered: a series' rows given
// together cost one lookup and make blocks of several samples, which the
// engine's merges then move fewer times. The samples are in the WAL before
// they are staged, so a crash loses nothing; a query first empties the
// stage, so every committed sample is visible to it (searchable), and a
// checkpoint empties it before it flushes the engine to its files.
const (
	// vmStageFor bounds how long a sample waits in the stage.
	vmStageFor = 10 * time.Second
	// vmStageMaxRows starts a flush before vmStageFor (16 B per row: 16
	// MiB, and as much again while a full stage is written to the
	// engine); a commit that finds twice as many waits for the flush
	// (the engine is behind).
	vmStageMaxRows = 1 << 20
	// vmPrecisionBits keeps every bit of a value (the engine rounds to 12
	// significant digits on its own when it encodes a block).
	vmPrecisionBits = 64
	// vmAddRowsChunk is how many rows one AddRows call takes.
	vmAddRowsChunk = 8192
)

// vmStage holds the rows of commits since the last flush, chained per
// series: rows[heads[i]] is the first row of order[i], each row's next the
// series' following row. A series belongs to the current stage when its
// stageGen is gen; flushes advance gen, so that nothing needs resetting.
type vmStage struct {
	mu    sync.Mutex
	gen   uint32
	batch vmStageBatch
	tails []int32
	// spare is the last flush's batch, its slices reused by the next
	// stage: new ones each time cost a quarter more collections (55
	// against 44 in a 240-s run at 260,000 samples/s) and saved less
	// memory than that was worth.
	spare vmStageBatch
}

// vmStageBatch is what one flush hands to the engine.
type vmStageBatch struct {
	rows  []stagedRow
	order []*vmSeries
	heads []int32
	// far holds the rows whose time is more than an int32 of ms (24 days)
	// from base: an agent's replay of old samples next to today's. They
	// go to the engine after the others, in no order.
	far   []farRow
	base  int64     // ms; rows hold their time as an offset from it
	since time.Time // when the oldest row came; zero when empty
}

// stagedRow is one staged sample, 16 bytes: 1 Mi of them wait in a full
// stage, as many again while the one before is flushed.
type stagedRow struct {
	dt   int32 // ms after the batch's base
	next int32 // index of the series' next row in rows, -1 for its last
	v    float64
}

type farRow struct {
	s *vmSeries
	t int64
	v float64
}

// vmRow is one sample of an appender or a WAL replay, for its series.
type vmRow struct {
	t int64
	v float64
}

func (b *vmStageBatch) len() int { return len(b.rows) + len(b.far) }

// add stages rows (refs[i] is rows[i]'s series) and reports how many rows
// the stage holds. Callers hold r.commitMu shared (or own the tier).
func (st *vmStage) add(refs []*vmSeries, rows []vmRow, now time.Time) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	b := &st.batch
	if b.len() == 0 {
		if len(rows) == 0 {
			return 0
		}
		b.since, b.base = now, rows[0].t
	}
	for i, row := range rows {
		s := refs[i]
		dt := row.t - b.base
		if dt < math.MinInt32 || dt > math.MaxInt32 {
			b.far = append(b.far, farRow{s: s, t: row.t, v: row.v})
			continue
		}
		idx := int32(len(b.rows))
		if s.stageGen != st.gen {
			s.stageGen, s.stageIdx = st.gen, int32(len(b.order))
			b.order = append(b.order, s)
			b.heads = append(b.heads, idx)
			st.tails = append(st.tails, idx)
		} else {
			b.rows[st.tails[s.stageIdx]].next = idx
			st.tails[s.stageIdx] = idx
		}
		b.rows = append(b.rows, stagedRow{dt: int32(dt), next: -1, v: row.v})
	}
	return b.len()
}

// due reports whether the stage's oldest row has waited vmStageFor.
func (st *vmStage) due(now time.Time) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.batch.len() > 0 && now.Sub(st.batch.since) >= vmStageFor
}

// take empties the stage and returns what it held.
func (st *vmStage) take() vmStageBatch {
	st.mu.Lock()
	defer st.mu.Unlock()
	b := st.batch
	st.batch = vmStageBatch{rows: st.spare.rows[:0], order: st.spare.order[:0], heads: st.spare.heads[:0], far: st.spare.far[:0]}
	st.spare = vmStageBatch{}
	st.tails = st.tails[:0]
	st.gen++
	return b
}

// giveBack keeps a flushed batch's slices for the next stage.
func (st *vmStage) giveBack(b vmStageBatch) {
	clear(b.order) // the series may be forgotten meanwhile
	clear(b.far)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.spare = vmStageBatch{rows: b.rows[:0], order: b.order[:0], heads: b.heads[:0], far: b.far[:0]}
}

// vmMonths remembers the months the engine has a partition for (it keeps
// one per month): the first row of a month goes to the engine at its
// commit, not with the stage, so that a partition's files are created
// where a failure is the commit's (the engine panics when it cannot
// create them, and cannot create them again after that).
type vmMonths struct {
	mu     sync.Mutex
	known  map[int64]bool // by monthOf
	lo, hi atomic.Int64   // the newest known month's bounds (ms), [lo, hi)
}

// monthOf returns t's month (UTC) as a number, and its bounds in ms.
func monthOf(t int64) (m, lo, hi int64) {
	tm := time.UnixMilli(t).UTC()
	first := time.Date(tm.Year(), tm.Month(), 1, 0, 0, 0, 0, time.UTC)
	return int64(tm.Year())*12 + int64(tm.Month()), first.UnixMilli(), first.AddDate(0, 1, 0).UnixMilli()
}

// ensurePartitions hands the engine, at once, one row of each month among
// rows it has no partition for yet.
func (r *vmRaw) ensurePartitions(refs []*vmSeries, rows []vmRow) error {
	lo, hi := r.months.lo.Load(), r.months.hi.Load()
	for i := range rows {
		t := rows[i].t
		if t >= lo && t < hi {
			continue
		}
		m, mlo, mhi := monthOf(t)
		r.months.mu.Lock()
		known := r.months.known[m]
		r.months.mu.Unlock()
		if !known {
			var n vmNamer
			row := []vmstorage.MetricRow{{MetricNameRaw: n.append(nil, refs[i].ls), Timestamp: t, Value: rows[i].v}}
			if err := r.addRowsNow(row); err != nil {
				return err
			}
			r.months.mu.Lock()
			r.months.known[m] = true
			r.months.mu.Unlock()
		}
		if mlo >= r.months.lo.Load() {
			r.months.lo.Store(mlo)
			r.months.hi.Store(mhi)
			lo, hi = mlo, mhi
		}
	}
	return nil
}

// addRowsNow hands rows to the engine, turning its panic into an error.
func (r *vmRaw) addRowsNow(rows []vmstorage.MetricRow) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = engineFailure(p)
		}
	}()
	r.st.AddRows(rows, vmPrecisionBits)
	return nil
}

// restore puts back the rows of a flush that failed, after any staged
// since; the engine merges the rows it took twice (SetDedupInterval).
func (st *vmStage) restore(b vmStageBatch) {
	var refs []*vmSeries
	var rows []vmRow
	b.each(func(s *vmSeries, t int64, v float64) {
		refs = append(refs, s)
		rows = append(rows, vmRow{t: t, v: v})
	})
	st.add(refs, rows, b.since)
	st.mu.Lock()
	if b.since.Before(st.batch.since) {
		st.batch.since = b.since
	}
	st.mu.Unlock()
}

// each calls f for every row of b, a series' rows one after the other.
func (b *vmStageBatch) each(f func(s *vmSeries, t int64, v float64)) {
	for i, s := range b.order {
		for j := b.heads[i]; j >= 0; j = b.rows[j].next {
			f(s, b.base+int64(b.rows[j].dt), b.rows[j].v)
		}
	}
	for _, r := range b.far {
		f(r.s, r.t, r.v)
	}
}

// stage hands a commit's rows to the stage; it wakes the flusher once the
// stage is full, and flushes itself when the flusher is a whole stage
// behind. Callers hold commitMu shared.
func (r *vmRaw) stage(refs []*vmSeries, rows []vmRow) error {
	n := r.staged.add(refs, rows, time.Now())
	switch {
	case n >= 2*r.stageMax:
		return r.flushStage()
	case n >= r.stageMax:
		select {
		case r.stageFull <- struct{}{}:
		default:
		}
	}
	return nil
}

// flushStage writes every staged row to the engine, a series' rows one
// after the other; it returns once they are there, also those of a flush
// already running.
func (r *vmRaw) flushStage() error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	return r.flushStageLocked()
}

// flushStageLocked is flushStage for callers holding flushMu. The engine
// panics where it cannot write (a partition's directory on a full disk):
// the rows then go back to the stage for the next flush, and the error
// stays in flushErr, which refuses commits, until a flush succeeds.
func (r *vmRaw) flushStageLocked() error {
	b := r.staged.take()
	if b.len() == 0 {
		r.staged.giveBack(b)
		return r.flushFailed()
	}
	// Series split between workers in contiguous runs: the engine takes
	// concurrent AddRows (one per core at most, its documentation says).
	workers := min(runtime.GOMAXPROCS(0), 1+b.len()/(8*vmAddRowsChunk))
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	per := (len(b.order) + workers - 1) / workers
	for w := range workers {
		lo, hi := w*per, min((w+1)*per, len(b.order))
		if lo >= hi {
			break
		}
		wg.Go(func() {
			mrs := make([]vmstorage.MetricRow, 0, vmAddRowsChunk+64)
			// The chunk's names, made as its series are: the engine
			// reads a row's name only during AddRows.
			var namer vmNamer
			names := make([]byte, 0, vmAddRowsChunk*64)
			for i := lo; i < hi; i++ {
				start := len(names)
				names = namer.append(names, b.order[i].ls)
				name := names[start:len(names):len(names)]
				for j := b.heads[i]; j >= 0; j = b.rows[j].next {
					mrs = append(mrs, vmstorage.MetricRow{MetricNameRaw: name, Timestamp: b.base + int64(b.rows[j].dt), Value: b.rows[j].v})
				}
				if len(mrs) < vmAddRowsChunk && i < hi-1 {
					continue
				}
				if err := r.addRowsNow(mrs); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				mrs, names = mrs[:0], names[:0]
			}
		})
	}
	wg.Wait()
	if failed.Load() == nil && len(b.far) > 0 {
		mrs := make([]vmstorage.MetricRow, 0, min(len(b.far), vmAddRowsChunk))
		var namer vmNamer
		var names []byte
		for k, fr := range b.far {
			start := len(names)
			names = namer.append(names, fr.s.ls)
			mrs = append(mrs, vmstorage.MetricRow{MetricNameRaw: names[start:len(names):len(names)], Timestamp: fr.t, Value: fr.v})
			if len(mrs) < vmAddRowsChunk && k < len(b.far)-1 {
				continue
			}
			if err := r.addRowsNow(mrs); err != nil {
				failed.Store(&err)
				break
			}
			mrs, names = mrs[:0], names[:0]
		}
	}
	if p := failed.Load(); p != nil {
		r.staged.restore(b)
		clear(b.order)
		clear(b.far)
		r.flushErr.Store(p)
		return *p
	}
	r.flushErr.Store(nil)
	r.staged.giveBack(b)
	return nil
}

// flushFailed returns the error of the last flush, nil when it succeeded.
func (r *vmRaw) flushFailed() error {
	if p := r.flushErr.Load(); p != nil {
		return *p
	}
	return nil
}

// engineFailure turns a panic of the engine into an error, one that
// matches syscall.ENOSPC when the engine ran out of space.
func engineFailure(p any) error {
	msg := fmt.Sprint(p)
	if strings.Contains(msg, syscall.ENOSPC.Error()) {
		return fmt.Errorf("raw tier: the engine cannot write staged samples: %s: %w", msg, syscall.ENOSPC)
	}
	return fmt.Errorf("raw tier: the engine cannot write staged samples: %s", msg)
}

// flusher flushes the stage when it is full or its oldest row is due,
// until Close. A failing flush is logged once, and retried.
func (r *vmRaw) flusher() {
	defer r.wg.Done()
	t := time.NewTicker(vmStageFor / 4)
	defer t.Stop()
	var failing bool
	for {
		select {
		case <-r.stop:
			return
		case <-r.stageFull:
		case now := <-t.C:
			if !r.staged.due(now) {
				continue
			}
		}
		switch err := r.flushStage(); {
		case err != nil && !failing:
			r.log.Error("raw tier: staged samples cannot be written to the engine; commits are refused until they are", "err", err)
		case err == nil && failing:
			r.log.Info("raw tier: staged samples written to the engine again")
		}
		failing = r.flushFailed() != nil
	}
}
