package scrape

import (
	"compress/gzip"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// emitted records what a loop hands to the stream.
type emitted struct {
	mu     sync.Mutex
	groups map[int64][]metric.Sample
}

func (e *emitted) emit(_ context.Context, ts int64, s []metric.Sample) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.groups == nil {
		e.groups = map[int64][]metric.Sample{}
	}
	e.groups[ts] = append(e.groups[ts], s...)
}

// value returns the value of the sample name with the label pairs among
// the group at ts.
func (e *emitted) value(t *testing.T, ts int64, name string, pairs ...string) float64 {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
next:
	for _, s := range e.groups[ts] {
		if s.Name != name {
			continue
		}
		for i := 0; i+1 < len(pairs); i += 2 {
			if s.Labels.Get(pairs[i]) != pairs[i+1] {
				continue next
			}
		}
		return s.Value
	}
	t.Fatalf("no %s%v at %d among %v", name, pairs, ts, e.groups[ts])
	return 0
}

func (e *emitted) count(ts int64) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.groups[ts])
}

// scrapeOnce runs one scrape of spec at tick ts and returns what it emitted.
func scrapeOnce(t *testing.T, spec string, ts int64) *emitted {
	t.Helper()
	e := &emitted{}
	s, err := New(Options{Targets: []Target{testTarget(t, spec)}, Emit: e.emit})
	if err != nil {
		t.Fatal(err)
	}
	s.loops[0].once(context.Background(), ts)
	return e
}

const tick = 1_700_000_010_000

func TestScrapeHealthy(t *testing.T) {
	var accept, timeout string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accept, timeout = r.Header.Get("Accept"), r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds")
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.Header().Set("Content-Encoding", "gzip")
		gz := gzip.NewWriter(w)
		_, _ = gz.Write([]byte("# TYPE a_total counter\na_total 5\nb{x=\"1\"} 2\nsysmonstm_x 1\nlate 7 1700000005000\n"))
		_ = gz.Close()
	}))
	defer srv.Close()
	inst := strings.TrimPrefix(srv.URL, "http://")
	e := scrapeOnce(t, srv.URL+"/metrics;job=app;interval=10s", tick)

	if !strings.HasPrefix(accept, "application/openmetrics-text") || timeout != "9" {
		t.Errorf("Accept %q, X-Prometheus-Scrape-Timeout-Seconds %q", accept, timeout)
	}
	if v := e.value(t, tick, "a_total", "job", "app", "instance", inst); v != 5 {
		t.Errorf("a_total = %v, want 5", v)
	}
	if v := e.value(t, tick-5000, "late", "job", "app"); v != 7 {
		t.Errorf("late = %v at its own timestamp, want 7", v)
	}
	for _, c := range []struct {
		name string
		want float64
	}{{"up", 1}, {"scrape_samples_scraped", 4}, {"scrape_samples_post_metric_relabeling", 3}} {
		if v := e.value(t, tick, c.name, "job", "app", "instance", inst); v != c.want {
			t.Errorf("%s = %v, want %v", c.name, v, c.want)
		}
	}
	if v := e.value(t, tick, "scrape_duration_seconds", "job", "app"); v <= 0 || v > 9 {
		t.Errorf("scrape_duration_seconds = %v", v)
	}
	// sysmonstm_x is refused by the hub: left out, counted, not a failure.
	if v := e.value(t, tick, "scrape_errors_total", "reason", ReasonInvalidSeries); v != 1 {
		t.Errorf("scrape_errors_total{reason=invalid_series} = %v, want 1", v)
	}
	if v := e.value(t, tick, "scrape_errors_total", "reason", ReasonConnect); v != 0 {
		t.Errorf("scrape_errors_total{reason=connect} = %v, want 0 (sent from the start)", v)
	}
}

// TestScrapeFailures: each failure gives up 0, no sample of the target,
// and counts its reason.
func TestScrapeFailures(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	mux := http.NewServeMux()
	mux.HandleFunc("/500", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "broken", 500) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("a 1\n", 1000)))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("a 1\n"))
		w.(http.Flusher).Flush()
		select { // the body never ends within the timeout
		case <-block:
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/garbage", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("a 1\nb c d\n")) })
	mux.HandleFunc("/many", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("a 1\nb 2\nc 3\n")) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/metrics"
	ln.Close()

	for _, c := range []struct{ spec, reason string }{
		{srv.URL + "/500", ReasonHTTPStatus},
		{srv.URL + "/big;body_limit=1KiB", ReasonBodyTooLarge},
		{srv.URL + "/slow;interval=1s;timeout=200ms", ReasonTimeout},
		{srv.URL + "/garbage", ReasonParse},
		{srv.URL + "/many;sample_limit=2", ReasonSampleLimit},
		{closed, ReasonConnect},
	} {
		e := scrapeOnce(t, c.spec, tick)
		if v := e.value(t, tick, "up"); v != 0 {
			t.Errorf("%s: up = %v, want 0", c.spec, v)
		}
		if v := e.value(t, tick, "scrape_errors_total", "reason", c.reason); v != 1 {
			t.Errorf("%s: scrape_errors_total{reason=%s} = %v, want 1", c.spec, c.reason, v)
		}
		if n := e.count(tick); n != 4+len(allReasons) {
			t.Errorf("%s: %d samples emitted, want only the %d health series", c.spec, n, 4+len(allReasons))
		}
	}
}

// TestScrapeDropsTimestampsOutsideWindow: explicit timestamps the hub
// would refuse are left out and counted.
func TestScrapeDropsTimestampsOutsideWindow(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("old 1 1600000000000\nahead 2 1800000000000\nnow 3\n"))
	}))
	defer srv.Close()
	e := scrapeOnce(t, srv.URL, tick)
	if v := e.value(t, tick, "scrape_errors_total", "reason", ReasonTimestamp); v != 1 {
		t.Errorf("scrape_errors_total{reason=%s} = %v, want 1", ReasonTimestamp, v)
	}
	if v := e.value(t, tick, "scrape_samples_post_metric_relabeling"); v != 1 {
		t.Errorf("scrape_samples_post_metric_relabeling = %v, want 1", v)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.groups) != 1 {
		t.Errorf("groups at %d timestamps, want only the tick", len(e.groups))
	}
}

// TestRunScrapesOnTicks: Run scrapes on multiples of the interval and
// stops with its context.
func TestRunScrapesOnTicks(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("a 1\n")) }))
	defer srv.Close()
	e := &emitted{}
	s, err := New(Options{Targets: []Target{testTarget(t, srv.URL+";interval=1s")}, Emit: e.emit})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.groups) < 2 {
		t.Fatalf("%d scrapes in 2.5s at 1s", len(e.groups))
	}
	for ts := range e.groups {
		if ts%1000 != 0 {
			t.Errorf("scrape stamped %d, not on a 1s boundary", ts)
		}
	}
}

func TestTickAfter(t *testing.T) {
	f := func(now, last, iv, want int64) {
		t.Helper()
		if got := tickAfter(now, last, iv); got != want {
			t.Errorf("tickAfter(%d, %d, %d) = %d, want %d", now, last, iv, got, want)
		}
	}
	f(14_999, 0, 15_000, 15_000)
	f(15_000, 0, 15_000, 30_000)
	f(14_000, 15_000, 15_000, 30_000) // the clock stepped back
}

// TestHealthSeriesDocumented: every health series a scrape sends and
// every reason of scrape_errors_total is in docs/metrics.md.
func TestHealthSeriesDocumented(t *testing.T) {
	docs, err := os.ReadFile(filepath.Join("..", "..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	e := scrapeOnce(t, "http://127.0.0.1:1/", tick) // refused: health series only
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.groups[tick] {
		if !strings.Contains(string(docs), "`"+s.Name+"`") {
			t.Errorf("%s is not in docs/metrics.md", s.Name)
		}
	}
	for _, r := range allReasons {
		if !strings.Contains(string(docs), "`"+r+"`") {
			t.Errorf("reason %s is not in docs/metrics.md", r)
		}
	}
}
