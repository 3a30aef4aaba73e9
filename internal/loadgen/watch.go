package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// LiveLatency is how long the simulated machines' samples took to reach a
// WebSocket client of the hub's live stream: from each batch's timestamp
// (the agent's collection tick) to the moment the client read its metrics
// event. It includes the agents' own work for the tick, the hub, and the
// client's socket.
type LiveLatency struct {
	Events int64   `json:"events"` // metrics events of the run's machines measured
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
	// Err says why the watch ended early ("" when it lasted the run).
	Err string `json:"error,omitempty"`
	// Windows are the same figures per window of the events' stamps
	// (Options.WatchWindow), oldest first: where in the run a tail comes
	// from.
	Windows []LatencyWindow `json:"windows,omitempty"`
}

// LatencyWindow is the live latency of the events stamped in one window.
// Over10Ms and Over50Ms count its events later than issue #16's two p99
// targets, so that the p99 of any run of windows can be checked against
// them: it is within a target when at most 1 % of the events are over it.
type LatencyWindow struct {
	Start    string  `json:"start"` // RFC 3339, UTC
	Events   int64   `json:"events"`
	P50Ms    float64 `json:"p50_ms"`
	P99Ms    float64 `json:"p99_ms"`
	MaxMs    float64 `json:"max_ms"`
	Over10Ms int64   `json:"over_10ms"`
	Over50Ms int64   `json:"over_50ms"`
}

// maxWatchMessage bounds one message of the live stream the watcher reads
// (the first is a snapshot of every machine).
const maxWatchMessage = 256 << 20

// watcher reads the hub's live stream and records the latency of every
// metrics event of the run's machines.
type watcher struct {
	prefix []byte // `"machine":"` + the machine prefix
	from   int64  // ms: events stamped earlier (warm-up) are not measured
	window int64  // ms: per-window figures when > 0

	mu   sync.Mutex
	lat  []float64 // ms
	ts   []int64   // each event's stamp (ms), with window > 0
	err  error
	done chan struct{}
}

// validateWatchURL checks a --watch URL.
func validateWatchURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return fmt.Errorf("watch URL %q: want ws(s)://host:port/ws", s)
	}
	return nil
}

// startWatch dials the live stream; events stamped before from are not
// measured. The watch runs until ctx ends.
func startWatch(ctx context.Context, rawURL, machinePrefix string, from time.Time, window time.Duration) (*watcher, error) {
	c, _, err := websocket.Dial(ctx, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("loadgen: watch %s: %w", rawURL, err)
	}
	c.SetReadLimit(maxWatchMessage)
	pj, _ := json.Marshal(machinePrefix)
	w := &watcher{
		prefix: append([]byte(`"machine":`), pj[:len(pj)-1]...), // without the closing quote
		from:   from.UnixMilli(),
		window: window.Milliseconds(),
		done:   make(chan struct{}),
	}
	go func() {
		defer close(w.done)
		defer c.CloseNow()
		head := make([]byte, watchHead)
		for {
			msg, err := readHead(ctx, c, head)
			now := time.Now()
			if err != nil {
				if ctx.Err() == nil {
					w.mu.Lock()
					w.err = err
					w.mu.Unlock()
				}
				return
			}
			if ts, ok := w.metricsTs(msg); ok && ts >= w.from {
				d := float64(now.UnixMicro()-ts*1000) / 1000
				w.mu.Lock()
				w.lat = append(w.lat, d)
				if w.window > 0 {
					w.ts = append(w.ts, ts)
				}
				w.mu.Unlock()
			}
		}
	}()
	return w, nil
}

// watchHead is how much of each message the watcher keeps: the head that
// metricsTs reads (type, machine id, ts). The rest is read and discarded,
// so that the watcher does not allocate a copy of every event (at 1 M
// samples/s, 60 MB/s) and measures the hub, not its own garbage.
const watchHead = 2048

// readHead reads the next message whole, keeping at most len(buf) bytes
// of its start, which it returns; the time after it returns is when the
// client had the entire message.
func readHead(ctx context.Context, c *websocket.Conn, buf []byte) ([]byte, error) {
	_, r, err := c.Reader(ctx)
	if err != nil {
		return nil, err
	}
	n, err := io.ReadFull(r, buf)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return buf[:n], nil // shorter than buf: all of it
	case err != nil:
		return nil, err
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return nil, err
	}
	return buf, nil
}

var metricsPrefix = []byte(`{"type":"metrics",`)

// metricsTs returns the ts of a metrics event of the run's machines. The
// hub encodes {"type":"metrics","machine":ID,"ts":MS,"metrics":[…]}; only
// that head is read, so the watcher keeps up with a large fleet.
func (w *watcher) metricsTs(msg []byte) (int64, bool) {
	if !bytes.HasPrefix(msg, metricsPrefix) {
		return 0, false
	}
	rest := msg[len(metricsPrefix):]
	if !bytes.HasPrefix(rest, w.prefix) {
		return 0, false
	}
	i := bytes.Index(rest, []byte(`,"ts":`))
	if i < 0 {
		return 0, false
	}
	rest = rest[i+len(`,"ts":`):]
	j := bytes.IndexByte(rest, ',')
	if j < 0 {
		return 0, false
	}
	ts, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	return ts, err == nil
}

// result waits for the watch to end (its ctx must be done) and summarizes it.
func (w *watcher) result() *LiveLatency {
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	var windows []LatencyWindow
	if w.window > 0 && len(w.ts) > 0 {
		byWin := map[int64][]float64{}
		for i, ts := range w.ts {
			k := ts / w.window
			byWin[k] = append(byWin[k], w.lat[i])
		}
		keys := make([]int64, 0, len(byWin))
		for k := range byWin {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			lat := byWin[k]
			s := latencySummary(lat)
			windows = append(windows, LatencyWindow{
				Start: time.UnixMilli(k * w.window).UTC().Format(time.RFC3339), Events: s.Events,
				P50Ms: s.P50Ms, P99Ms: s.P99Ms, MaxMs: s.MaxMs,
				Over10Ms: countOver(lat, 10), Over50Ms: countOver(lat, 50),
			})
		}
	}
	out := latencySummary(w.lat)
	out.Windows = windows
	if w.err != nil {
		out.Err = w.err.Error()
	}
	return out
}

// countOver counts the latencies in ms over limit ms.
func countOver(ms []float64, limit float64) int64 {
	var n int64
	for _, v := range ms {
		if v > limit {
			n++
		}
	}
	return n
}

// latencySummary computes the percentiles of ms (reordered in place).
func latencySummary(ms []float64) *LiveLatency {
	out := &LiveLatency{Events: int64(len(ms))}
	if len(ms) == 0 {
		return out
	}
	slices.Sort(ms)
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(ms)))) - 1
		return round(ms[max(0, min(i, len(ms)-1))], 0.01)
	}
	out.P50Ms, out.P99Ms, out.MaxMs = q(0.50), q(0.99), round(ms[len(ms)-1], 0.01)
	return out
}
