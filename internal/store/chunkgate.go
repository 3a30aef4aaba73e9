package store

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/prometheus/tsdb"
)

// The TSDB's head chunk mapper (tsdb/chunks.ChunkDiskMapper, Prometheus
// v0.313 to v0.316 at least) has a race between its first chunk file and a
// head truncation. Truncate lists the mapper's files, and when it found
// none it resets the file sequence to 0, after the list and outside the
// lock the writers take. A chunk written in between cuts file 1; the
// chunks after the reset then get references into a file 0 that never
// exists, though their bytes go to file 1. Reading them fails ("head chunk
// file index 0 does not exist on disk"), for in-order chunks with a panic,
// and a head compaction that reads them fails for good. A truncation
// follows every head compaction, so a fresh raw tier that takes more than
// 1.5 blocks' worth of samples at once (agents replaying hours of buffer
// into a new hub; TestRollupRecompute in CI) could compact its head while
// the first chunks are written. Once the mapper has a file it always has
// one (the current file is never deleted), so the race is over then.
//
// compactGate therefore keeps the raw tier's compactions off while its
// head has written no chunk file, and turns them on once one appears
// (checked every chunkGateEvery). It also holds the store's own reason to
// turn them off (a full disk, watchSpace), so that neither turns them on
// while the other wants them off. Compact called directly (tests, tools)
// is not gated.
type compactGate struct {
	db  *tsdb.DB
	dir string // the head's chunk files

	mu      sync.Mutex
	off     bool // DisableCompactions: the store's own reason
	waiting bool // no chunk file yet
	stop    chan struct{}
	done    chan struct{}
}

// chunkGateEvery is how often a gate waiting for the first chunk file looks
// for it. Compactions need 1.5 blocks of data in the head, so a second's
// delay costs nothing.
const chunkGateEvery = time.Second

// newCompactGate gates db's compactions until its head has a chunk file.
func newCompactGate(db *tsdb.DB) *compactGate {
	g := &compactGate{db: db, dir: filepath.Join(db.Dir(), "chunks_head")}
	if g.hasChunkFile() {
		return g
	}
	g.waiting = true
	g.stop, g.done = make(chan struct{}), make(chan struct{})
	db.DisableCompactions()
	go g.wait()
	return g
}

// hasChunkFile reports whether the head has written a chunk file (their
// names are sequence numbers: 000001, 000002, …).
func (g *compactGate) hasChunkFile() bool {
	entries, err := os.ReadDir(g.dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if _, err := strconv.ParseUint(e.Name(), 10, 32); err == nil && e.Type().IsRegular() {
			return true
		}
	}
	return false
}

func (g *compactGate) wait() {
	defer close(g.done)
	t := time.NewTicker(chunkGateEvery)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
		if g.hasChunkFile() {
			g.mu.Lock()
			g.waiting = false
			g.apply()
			g.mu.Unlock()
			return
		}
	}
}

// apply turns the compactions on or off; g.mu is held.
func (g *compactGate) apply() {
	if g.off || g.waiting {
		g.db.DisableCompactions() // waits for a running compaction
	} else {
		g.db.EnableCompactions()
	}
}

func (g *compactGate) set(off bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.off = off
	g.apply()
}

// close stops the wait for the first chunk file.
func (g *compactGate) close() {
	if g.stop != nil {
		select {
		case <-g.stop:
		default:
			close(g.stop)
		}
		<-g.done
	}
}

// isWaiting reports whether the gate still waits for the first chunk file.
func (g *compactGate) isWaiting() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waiting
}
