package scrape

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// acceptHeader asks for the text formats Parse reads, OpenMetrics first,
// as Prometheus does when protobuf is off.
const acceptHeader = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"

// allReasons are the reason label values of scrape_errors_total, each
// sent from the first scrape on (at 0), so increase() sees the first error.
var allReasons = []string{ReasonConnect, ReasonTimeout, ReasonHTTPStatus, ReasonBodyTooLarge,
	ReasonContentType, ReasonParse, ReasonSampleLimit, ReasonInvalidSeries, ReasonTimestamp}

// logEvery bounds how often the same failure of a target is logged again.
const logEvery = 10 * time.Minute

// loop scrapes one target; only its goroutine touches it.
type loop struct {
	t      Target
	opts   *Options
	log    *slog.Logger
	health metric.Labels    // {instance, job}
	errLs  []metric.Labels  // {instance, job, reason} per allReasons
	errors map[string]int64 // reason → scrapes with that problem, since start
	body   bytes.Buffer     // reused between scrapes
	cache  seriesCache      // conversions of the series of the last scrape
	last   string           // last problem logged, "" while healthy
	lastAt time.Time        // when it was logged
}

func newLoop(t Target, opts *Options) *loop {
	l := &loop{t: t, opts: opts, errors: map[string]int64{}, cache: seriesCache{m: map[string]*cachedSeries{}},
		log:    opts.Logger.With("job", t.Job, "instance", t.Instance, "url", t.URL),
		health: metric.Labels{{Name: InstanceLabel, Value: t.Instance}, {Name: JobLabel, Value: t.Job}},
	}
	for _, r := range allReasons {
		l.errLs = append(l.errLs, metric.Labels{{Name: InstanceLabel, Value: t.Instance}, {Name: JobLabel, Value: t.Job}, {Name: "reason", Value: r}})
	}
	return l
}

// run scrapes on every multiple of the interval since the epoch until ctx ends.
func (l *loop) run(ctx context.Context) {
	iv := l.t.Interval.Milliseconds()
	var last int64
	for {
		now := time.Now().UnixMilli()
		next := tickAfter(now, last, iv)
		timer := time.NewTimer(time.Duration(next-now) * time.Millisecond)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		last = next
		l.once(ctx, next)
	}
}

// once scrapes the target for tick ts and emits its samples and health.
func (l *loop) once(ctx context.Context, ts int64) {
	start := time.Now()
	exp, err := l.scrape(ctx)
	dur := time.Since(start)
	if ctx.Err() != nil {
		return // shutting down: an interrupted scrape is no failure of the target
	}
	var problems []string
	if err != nil {
		problems = append(problems, reasonOf(err))
	}
	if exp.Invalid > 0 {
		problems = append(problems, ReasonInvalidSeries)
	}
	groups, outside := groupByTime(exp, ts)
	if outside > 0 {
		problems = append(problems, ReasonTimestamp)
	}
	for _, r := range problems {
		l.errors[r]++
	}
	l.report(err, exp, outside)

	now := groups[ts]
	up := 0.0
	if err == nil {
		up = 1
	}
	now = append(now,
		metric.Sample{Name: "up", Labels: l.health, Value: up},
		metric.Sample{Name: "scrape_duration_seconds", Labels: l.health, Value: dur.Seconds()},
		metric.Sample{Name: "scrape_samples_scraped", Labels: l.health, Value: float64(len(exp.Samples) + exp.Invalid + exp.NonFinite)},
		metric.Sample{Name: "scrape_samples_post_metric_relabeling", Labels: l.health, Value: float64(len(exp.Samples) - outside)},
	)
	for i, r := range allReasons {
		now = append(now, metric.Sample{Name: "scrape_errors_total", Labels: l.errLs[i], Value: float64(l.errors[r])})
	}
	groups[ts] = now
	times := make([]int64, 0, len(groups))
	for t := range groups {
		times = append(times, t)
	}
	slices.Sort(times)
	for _, t := range times {
		l.opts.Emit(ctx, t, groups[t])
	}
}

// groupByTime splits exp's samples by timestamp: those without one under
// tick. Explicit timestamps more than maxTimestampAge before the tick or
// maxTimestampAhead after it are left out and counted.
func groupByTime(exp Exposition, tick int64) (map[int64][]metric.Sample, int) {
	groups := map[int64][]metric.Sample{}
	if exp.Times == nil {
		groups[tick] = exp.Samples
		return groups, 0
	}
	outside := 0
	for i, s := range exp.Samples {
		t := exp.Times[i]
		switch {
		case t == 0:
			t = tick
		case t < tick-maxTimestampAge.Milliseconds() || t > tick+maxTimestampAhead.Milliseconds():
			outside++
			continue
		}
		groups[t] = append(groups[t], s)
	}
	return groups, outside
}

// report logs a failed scrape or left-out samples, the same problem at
// most once per logEvery, and a recovery once.
func (l *loop) report(err error, exp Exposition, outside int) {
	var problem string
	switch {
	case err != nil:
		problem = err.Error()
	case exp.Invalid > 0:
		problem = fmt.Sprintf("%s: %d samples of series the hub would refuse left out (names starting with %s, over %d labels, a name or value over the length limits)",
			ReasonInvalidSeries, exp.Invalid, metric.ReservedPrefix, metric.DefaultLimits.MaxLabels)
	case outside > 0:
		problem = fmt.Sprintf("%s: %d samples with timestamps more than %s old or %s ahead left out", ReasonTimestamp, outside, maxTimestampAge, maxTimestampAhead)
	}
	switch {
	case problem == "" && l.last != "":
		l.log.Info("scrape target healthy again")
	case problem != "" && (problem != l.last || time.Since(l.lastAt) >= logEvery):
		if err != nil {
			l.log.Warn("scrape failed", "reason", reasonOf(err), "err", err)
		} else {
			l.log.Warn("scrape incomplete", "problem", problem)
		}
		l.lastAt = time.Now()
	}
	l.last = problem
}

// scrape fetches and parses the target within its timeout.
func (l *loop) scrape(ctx context.Context) (Exposition, error) {
	ctx, cancel := context.WithTimeout(ctx, l.t.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.t.URL, nil)
	if err != nil {
		return Exposition{}, &Error{Reason: ReasonConnect, Err: err}
	}
	req.Header.Set("Accept", acceptHeader)
	req.Header.Set("User-Agent", l.opts.UserAgent)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", strconv.FormatFloat(l.t.Timeout.Seconds(), 'f', -1, 64))
	resp, err := l.opts.Client.Do(req)
	if err != nil {
		return Exposition{}, transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Exposition{}, &Error{Reason: ReasonHTTPStatus, Err: fmt.Errorf("server returned HTTP status %s", resp.Status)}
	}
	l.body.Reset()
	// Go's transport decompresses gzip itself: the limit is on what is parsed.
	n, err := l.body.ReadFrom(io.LimitReader(resp.Body, l.t.BodyLimit+1))
	if err != nil {
		return Exposition{}, transportError(ctx, fmt.Errorf("read body: %w", err))
	}
	if n > l.t.BodyLimit {
		return Exposition{}, &Error{Reason: ReasonBodyTooLarge, Err: fmt.Errorf("body larger than %d bytes (body_limit)", l.t.BodyLimit)}
	}
	return parse(l.body.Bytes(), resp.Header.Get("Content-Type"), &l.t, &l.cache)
}

// transportError classifies a failed request or body read.
func transportError(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &Error{Reason: ReasonTimeout, Err: err}
	}
	return &Error{Reason: ReasonConnect, Err: err}
}
