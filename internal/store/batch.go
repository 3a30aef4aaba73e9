package store

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/prometheus/prometheus/tsdb"
)

// The rollup tiers keep no series in memory between passes: a pass rolls
// closed batches (the 1m tier per hour, the 1h tier per UTC day) into a
// block batch (blockwrite.go), a group of machines at a time, writes each
// group as blocks into the staging directory, and then commits the blocks:
//
//  1. the state file records the staged blocks and the watermarks they
//     bring (pending);
//  2. the blocks move into the tier's directory and the tier loads them;
//  3. the watermarks advance in memory (queries read the blocks from now
//     on) and the state file drops the pending entry.
//
// A crash before 1 leaves staged blocks that Open deletes: the batch is
// redone. A crash after 1 is finished by Open (the moves are idempotent), so
// no block is loaded twice and none is lost.
const (
	dayMs = 24 * hourMs

	// batch1m and batch1h are how much of a machine's time one block
	// batch covers, in ms: the 1m tier is written per closed hour, the 1h
	// tier per closed UTC day.
	batch1m = hourMs
	batch1h = dayMs

	// DefaultRollupBatchSeries bounds the series of one rollup batch: a
	// group of machines is written as blocks once its rollups reach it
	// (plus the last machine's).
	DefaultRollupBatchSeries = 50_000

	stagingDirName = "rollup-staging"
)

// pendingBlocks are staged blocks of one tier whose move into the tier is
// recorded in the state file but maybe not done yet.
type pendingBlocks struct {
	Tier   string           `json:"tier"`
	Blocks []string         `json:"blocks"` // ULIDs in the staging directory
	Marks  map[string]int64 `json:"marks"`  // machine → new watermark of Tier, ms since epoch
}

func (s *Store) stagingPath() string { return filepath.Join(s.opts.Dir, stagingDirName) }

func (s *Store) tierDB(tier string) *tsdb.DB {
	if t := s.rollupTier(tier); t != nil {
		return t.DB
	}
	return nil
}

// rollupTier returns the rollup tier named tier, or nil.
func (s *Store) rollupTier(tier string) *Tier {
	switch tier {
	case Tier1m:
		return s.tier1m
	case Tier1h:
		return s.tier1h
	}
	return nil
}

// failAt is a test hook: a non-nil return stops a pass after that step of
// writing tier ("full": a group's batch is complete, before it is
// written; "flushed": its blocks are staged; "recorded": the state file
// names the staged blocks; "moved": they are in the tier's directory;
// "loaded": the tier has loaded them), as a crash there would; "streamed"
// (the jobs read in one search are rolled up) also takes errSeriesSplit.
type failAt func(tier, step string) error

func (s *Store) fail(tier, step string) error {
	if s.failAt == nil {
		return nil
	}
	return s.failAt(tier, step)
}

// commitBlocks moves staged blocks into tier and advances the watermarks
// marks (machine → ms) once the tier has loaded them. Callers hold rollupMu.
func (s *Store) commitBlocks(tier string, blocks []string, marks map[string]int64) error {
	p := pendingBlocks{Tier: tier, Blocks: blocks, Marks: marks}
	s.pending = append(s.pending, p)
	if err := s.saveState(); err != nil {
		s.pending = s.pending[:len(s.pending)-1]
		s.removeStaged(blocks)
		return err
	}
	if err := s.fail(tier, "recorded"); err != nil {
		return err
	}
	return s.finishPending()
}

// finishPending completes every recorded commit: move, load, advance,
// save. It is idempotent, so a failed pass finishes on the next.
func (s *Store) finishPending() error {
	if len(s.pending) == 0 {
		return nil
	}
	for _, p := range s.pending {
		if err := s.moveStaged(p); err != nil {
			return err
		}
		if err := s.fail(p.Tier, "moved"); err != nil {
			return err
		}
		// Also when nothing was left to move: a failed pass may have
		// moved the blocks without loading them.
		if err := reloadBlocks(s.tierDB(p.Tier)); err != nil {
			return fmt.Errorf("rollup %s: load blocks: %w", p.Tier, err)
		}
		if err := s.fail(p.Tier, "loaded"); err != nil {
			return err
		}
		s.applyMarks(p)
	}
	s.pending = nil
	return s.saveState()
}

// moveStaged renames p's staged blocks into its tier's directory; a block
// no longer staged was moved before.
func (s *Store) moveStaged(p pendingBlocks) error {
	dst := filepath.Join(s.opts.Dir, p.Tier)
	moved := false
	for _, id := range p.Blocks {
		from := filepath.Join(s.stagingPath(), id)
		if _, err := os.Stat(from); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.Rename(from, filepath.Join(dst, id)); err != nil {
			return fmt.Errorf("rollup %s: move block %s: %w", p.Tier, id, s.space.noteWriteError(err))
		}
		moved = true
	}
	if moved {
		if err := syncDir(dst); err != nil {
			return fmt.Errorf("rollup %s: %w", p.Tier, s.space.noteWriteError(err))
		}
	}
	return nil
}

func (s *Store) applyMarks(p pendingBlocks) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for m, t := range p.Marks {
		w := s.machines[m]
		if w == nil {
			w = &watermark{}
			s.machines[m] = w
		}
		switch p.Tier {
		case Tier1m:
			w.done1m = max(w.done1m, t)
		case Tier1h:
			w.done1h = max(w.done1h, t)
		}
	}
}

func (s *Store) removeStaged(blocks []string) {
	for _, id := range blocks {
		_ = os.RemoveAll(filepath.Join(s.stagingPath(), id))
	}
}

// reloadBlocks makes db load the blocks in its directory now. The TSDB
// exports no reload; compacting an empty range of its (always empty) head
// writes nothing and reloads.
func reloadBlocks(db *tsdb.DB) error {
	return db.CompactHead(tsdb.NewRangeHead(db.Head(), math.MinInt64, math.MinInt64))
}

// recoverStaging runs in Open before the tiers open: it finishes the moves
// the state file records and clears the staging directory of everything
// else (blocks and heads of a pass that did not reach its commit).
func (s *Store) recoverStaging() error {
	for _, p := range s.pending {
		if err := s.moveStaged(p); err != nil {
			return err
		}
		s.applyMarks(p)
	}
	if err := os.RemoveAll(s.stagingPath()); err != nil {
		return fmt.Errorf("clear %s: %w", s.stagingPath(), err)
	}
	if err := os.MkdirAll(s.stagingPath(), 0o750); err != nil {
		return fmt.Errorf("create %s: %w", s.stagingPath(), err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
