package scrape

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// EmitFunc hands one group of samples, all stamped ts (ms since the epoch),
// to the agent's stream. It may block; it should return when ctx ends. The
// slice is the callee's: the scraper never touches it again.
type EmitFunc func(ctx context.Context, ts int64, samples []metric.Sample)

// Options configure a Scraper. Emit is required.
type Options struct {
	Targets   []Target
	Emit      EmitFunc
	UserAgent string       // sent with each scrape; default "sysmonstm-agent"
	Client    *http.Client // default: a client of its own, following redirects
	Logger    *slog.Logger // default: discard
}

// Scraper scrapes its targets, each on its own goroutine and interval.
type Scraper struct {
	opts  Options
	loops []*loop
}

// New checks opts and returns a Scraper; it scrapes nothing until Run.
func New(opts Options) (*Scraper, error) {
	if opts.Emit == nil {
		return nil, errors.New("scrape: Emit is nil")
	}
	if err := CheckTargets(opts.Targets); err != nil {
		return nil, err
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "sysmonstm-agent"
	}
	if opts.Client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 1
		opts.Client = &http.Client{Transport: tr}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Scraper{opts: opts}
	for _, t := range opts.Targets {
		s.loops = append(s.loops, newLoop(t, &s.opts))
	}
	return s, nil
}

// CheckTargets validates each target and refuses two with the same job
// and instance: their up and scrape_* series would collide.
func CheckTargets(ts []Target) error {
	seen := map[[2]string]string{}
	for i := range ts {
		if err := ts[i].Validate(); err != nil {
			return fmt.Errorf("scrape target %s: %w", ts[i].URL, err)
		}
		k := [2]string{ts[i].Job, ts[i].Instance}
		if prev, dup := seen[k]; dup {
			return fmt.Errorf("scrape targets %s and %s have the same job %q and instance %q, so their up and scrape_* series would collide; give one another job=", prev, ts[i].URL, ts[i].Job, ts[i].Instance)
		}
		seen[k] = ts[i].URL
	}
	return nil
}

// Run scrapes every target until ctx ends, then returns nil.
func (s *Scraper) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, l := range s.loops {
		wg.Go(func() { l.run(ctx) })
	}
	wg.Wait()
	return nil
}

// Bounds of the explicit timestamps kept, relative to the scrape's tick:
// the hub refuses batches much older (its --max-age, 2h by default, and a
// replayed batch ages in the agent's buffer) or ahead of its clock.
const (
	maxTimestampAge   = time.Hour
	maxTimestampAhead = 5 * time.Minute
)

// tickAfter returns the first multiple of iv (ms) after now, and after
// last: scrapes are stamped on wall-clock boundaries, as the collectors'
// ticks are, and never repeat a tick when the clock steps back.
func tickAfter(now, last, iv int64) int64 {
	next := now - now%iv + iv
	if next <= last {
		next = last + iv
	}
	return next
}
