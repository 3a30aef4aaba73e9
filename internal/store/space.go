package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sysmonstm/sysmonstm/internal/diskspace"
)

// The free-space reserve. The TSDB panics when its head chunk writer meets
// ENOSPC (tsdb.handleChunkWriteError): each tier's writer flushes a write
// buffer of up to 4 MiB (chunks.DefaultWriteBufferSize) and cuts a new chunk
// file preallocated to 128 KiB (chunks.HeadChunkFilePreallocationSize on
// Linux), and chunks already cut are written out once a minute even when no
// sample arrives. The store stops taking samples while less than the reserve
// is free, so those writes always find room.
const (
	// DefaultMinFree is the reserve Open uses when Options.MinFree is 0.
	DefaultMinFree = 256 << 20
	// EngineReserve is the least reserve, in bytes: per tier one 4 MiB chunk
	// buffer flush, one 128 KiB chunk file preallocation and one 32 KiB WAL
	// page, rounded up to 16 MiB for the metadata files beside them.
	EngineReserve = 16 << 20
	// reservePerSeries is added to the reserve for each series in the raw
	// tier's head, in bytes: the head chunks a series may have cut but not
	// yet written (up to two raw ones at a 250 ms interval and one per
	// rollup kind), at up to ~1 KiB each for poorly compressible values.
	reservePerSeries = 4 << 10
	// spaceCheckInterval is how often the guard calls statfs.
	spaceCheckInterval = time.Second
	// fullLogInterval bounds the "still full" reminders in the log.
	fullLogInterval = time.Minute
)

// Space is a filesystem's capacity, in bytes.
type Space struct {
	Avail uint64 // what an unprivileged writer may still use (statfs f_bavail)
	Total uint64
}

// StatfsFunc reports the space of the filesystem holding path.
type StatfsFunc func(path string) (Space, error)

// statfs is the default StatfsFunc: statfs(2) on Linux, an error wrapping
// errors.ErrUnsupported elsewhere (the guard is then off).
func statfs(path string) (Space, error) {
	u, err := diskspace.Stat(path)
	return Space{Avail: u.Avail, Total: u.Size}, err
}

// ErrDiskFull is matched (errors.Is) by every *DiskFullError.
var ErrDiskFull = errors.New("disk full")

// DiskFullError reports that the store refuses writes because the data
// directory's filesystem has less than the reserve free, or a write failed
// for lack of space.
type DiskFullError struct {
	Dir     string // the store's directory
	Avail   uint64 // bytes free at the last check
	Reserve uint64 // bytes the store keeps free
	// Err is the write error that revealed the full disk (ENOSPC, EDQUOT);
	// nil when statfs did.
	Err error
}

func (e *DiskFullError) Error() string {
	how := fmt.Sprintf("%s free, below the %s reserve", formatBytes(e.Avail), formatBytes(e.Reserve))
	if e.Err != nil {
		how = "a storage write found no space left (" + how + ")"
	}
	return "disk full: " + how + "; free space on the data directory's filesystem (delete other files there or grow it)"
}

// Unwrap returns the write error, if any.
func (e *DiskFullError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrDiskFull) true.
func (e *DiskFullError) Is(target error) bool { return target == ErrDiskFull }

// IsDiskFull reports whether err is, or wraps, a full disk: a
// *DiskFullError, ENOSPC or EDQUOT.
func IsDiskFull(err error) bool {
	return errors.Is(err, ErrDiskFull) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// formatBytes renders n bytes for people: "12.3 MiB".
func formatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}

// spaceGuard watches the free space of the store's filesystem. Below the
// reserve it refuses writes; it resumes at the reserve plus a quarter
// (hysteresis), so a hub hovering at the edge does not flap once a second.
type spaceGuard struct {
	dir     string
	statfs  StatfsFunc
	minFree uint64        // configured reserve, bytes
	series  func() uint64 // series in the raw head; nil = 0
	log     *slog.Logger
	now     func() time.Time
	m       *spaceMetrics

	// full is nil while writes are allowed. Readers on the ingest path load
	// it without a lock.
	full atomic.Pointer[DiskFullError]
	// changed wakes the watcher after a write error marked the disk full.
	changed chan struct{}

	// mu protects the fields below: the watcher's view of the last check.
	mu        sync.Mutex
	avail     uint64    // bytes, last successful statfs
	fullSince time.Time // zero while writable
	lastLog   time.Time // last "still full" or statfs failure line
	disabled  bool      // statfs unsupported here: the guard never refuses
}

type spaceMetrics struct {
	full    prometheus.Gauge
	avail   prometheus.Gauge
	reserve prometheus.Gauge
	events  prometheus.Counter
}

func newSpaceMetrics(reg prometheus.Registerer) *spaceMetrics {
	m := &spaceMetrics{
		full: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sysmonstm_storage_disk_full",
			Help: "1 while the storage refuses samples because its filesystem has less than the reserve free.",
		}),
		avail: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sysmonstm_storage_free_bytes",
			Help: "Bytes free on the storage's filesystem at the last check (once a second).",
		}),
		reserve: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sysmonstm_storage_reserve_bytes",
			Help: "Bytes the storage keeps free: below this it refuses samples.",
		}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sysmonstm_storage_disk_full_events_total",
			Help: "Times the storage started refusing samples for lack of disk space.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.full, m.avail, m.reserve, m.events)
	}
	return m
}

// reserve is the effective reserve in bytes: the configured one, or more on
// a hub with many series.
func (g *spaceGuard) reserve() uint64 {
	r := uint64(EngineReserve)
	if g.series != nil {
		r += g.series() * reservePerSeries
	}
	return max(r, g.minFree)
}

// state returns nil while writes are allowed, else the *DiskFullError.
func (g *spaceGuard) state() error {
	if e := g.full.Load(); e != nil {
		return e
	}
	return nil
}

// check calls statfs once and moves between writable and full. It reports
// whether the state changed.
func (g *spaceGuard) check() (changed bool) {
	sp, err := g.statfs(g.dir)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.disabled {
		return false
	}
	now := g.now()
	if err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			g.disabled = true
			g.log.Warn("free-space guard off: statfs is not supported here; a full disk may stop the hub", "dir", g.dir, "err", err)
			return false
		}
		// Keep the last state: a failing statfs says nothing about space.
		if now.Sub(g.lastLog) >= fullLogInterval {
			g.lastLog = now
			g.log.Warn("free-space check failed; keeping the last state", "dir", g.dir, "err", err)
		}
		return false
	}
	g.avail = sp.Avail
	res := g.reserve()
	g.m.avail.Set(float64(sp.Avail))
	g.m.reserve.Set(float64(res))
	cur := g.full.Load()
	switch {
	case cur == nil && sp.Avail < res:
		g.setFullLocked(&DiskFullError{Dir: g.dir, Avail: sp.Avail, Reserve: res}, now)
		return true
	case cur != nil && sp.Avail >= res+res/4:
		g.full.Store(nil)
		g.m.full.Set(0)
		g.log.Info("disk space recovered: storage takes samples again", "dir", g.dir,
			"free", formatBytes(sp.Avail), "reserve", formatBytes(res), "full_for", now.Sub(g.fullSince).Round(time.Second))
		g.fullSince = time.Time{}
		return true
	case cur != nil:
		// Still full: refresh the figures the error reports.
		g.full.Store(&DiskFullError{Dir: g.dir, Avail: sp.Avail, Reserve: res, Err: cur.Err})
		if now.Sub(g.lastLog) >= fullLogInterval {
			g.lastLog = now
			g.log.Error("disk still full: samples are refused; free space on the data directory's filesystem", "dir", g.dir,
				"free", formatBytes(sp.Avail), "reserve", formatBytes(res), "resume_at", formatBytes(res+res/4),
				"full_for", now.Sub(g.fullSince).Round(time.Second))
		}
		return false
	}
	return false
}

// setFullLocked publishes e and logs the change. Callers hold mu.
func (g *spaceGuard) setFullLocked(e *DiskFullError, now time.Time) {
	g.full.Store(e)
	g.fullSince, g.lastLog = now, now
	g.m.full.Set(1)
	g.m.events.Inc()
	args := []any{"dir", g.dir, "free", formatBytes(e.Avail), "reserve", formatBytes(e.Reserve), "resume_at", formatBytes(e.Reserve + e.Reserve/4)}
	if e.Err != nil {
		args = append(args, "err", e.Err)
	}
	g.log.Error("disk full: storage refuses samples until space is freed; agents keep theirs and resend them", args...)
}

// noteWriteError marks the disk full when err is a lack of space, and
// returns err wrapped in a *DiskFullError then; other errors pass unchanged.
func (g *spaceGuard) noteWriteError(err error) error {
	if err == nil || !IsDiskFull(err) {
		return err
	}
	var dfe *DiskFullError
	if errors.As(err, &dfe) {
		return err
	}
	sp, serr := g.statfs(g.dir)
	g.mu.Lock()
	if serr == nil {
		g.avail = sp.Avail
	}
	res := g.reserve()
	e := &DiskFullError{Dir: g.dir, Avail: g.avail, Reserve: res, Err: err}
	if g.full.Load() == nil {
		g.setFullLocked(e, g.now())
		select {
		case g.changed <- struct{}{}:
		default:
		}
	}
	g.mu.Unlock()
	return e
}

// watchSpace checks the free space every spaceCheckInterval until ctx is
// done. While the disk is full the tiers' compactions are off: a compaction
// writes a whole block before it frees the WAL, and would eat the reserve
// the head chunk writers need. Retention still deletes old blocks.
func (s *Store) watchSpace(ctx context.Context) {
	t := time.NewTicker(spaceCheckInterval)
	defer t.Stop()
	compacting := true
	for {
		if full := s.space.state() != nil; full == compacting {
			for _, db := range []interface {
				DisableCompactions()
				EnableCompactions()
			}{s.raw, s.tier1m, s.tier1h} {
				if full {
					db.DisableCompactions() // waits for a running compaction
				} else {
					db.EnableCompactions()
				}
			}
			compacting = !full
		}
		select {
		case <-ctx.Done():
			return
		case <-s.space.changed:
			continue
		case <-t.C:
		}
		s.space.check()
	}
}
