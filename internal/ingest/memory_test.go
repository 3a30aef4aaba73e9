package ingest

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// waitMemory waits until the guard's state is over.
func waitMemory(t *testing.T, g *memGuard, over bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for g.over.Load() != over {
		if time.Now().After(deadline) {
			t.Fatalf("memory guard over=%v after 10s (used %s MiB, high-water %s MiB)", !over, mib(g.used.Load()), mib(g.high))
		}
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
}

// With the hub's memory above its --max-memory high-water mark (real memory:
// a 256 MiB live allocation), new series are refused with the reason
// counted, logged and told to HTTP senders, a new machine's stream is
// refused, while the series and machines the hub has keep flowing; once the
// memory is freed new series are taken again.
func TestMemoryHighWaterRefusesNewSeries(t *testing.T) {
	runtime.GC()
	probe := newMemGuard(1<<40, nil, slog.New(slog.DiscardHandler))
	budget := int64(float64(probe.used.Load()+128<<20) / MemoryHighWater) // high-water 128 MiB above what is in use now
	e := newEnv(t, t.TempDir(), nil, func(o *Options) { o.MaxMemory = budget })
	g := e.srv.series.mem
	waitMemory(t, g, false)
	h := e.srv.HTTPHandler()
	a, err := e.connect("old", 1)
	if err != nil {
		t.Fatal(err)
	}
	a.defsRound(0, 20)
	a.batchAll(1, tick(1), 20, 1)
	a.waitAck(1)
	if code, out := post(t, h, bombBody("pushed", 0, 10)); code != 200 || out["accepted"] != 10.0 {
		t.Fatalf("before: %d %v", code, out)
	}

	ballast := &struct{ b []byte }{make([]byte, 256<<20)}
	for i := range ballast.b {
		ballast.b[i] = byte(i)
	}
	waitMemory(t, g, true)

	// The stream's existing series flow; its new ones are refused.
	a.defsRound(1, 5)
	a.batchAll(2, tick(2), 20, 2)
	a.waitAck(2)
	if n := e.seriesOf("old"); n != 20 {
		t.Fatalf("old has %d stored series over the high-water mark, want its 20", n)
	}
	if pts := e.points("bomb", "old"); len(pts) < 2 {
		t.Fatalf("existing series stopped flowing: %v", pts)
	}
	if got := e.refused(limitMemory); got < 5 {
		t.Fatalf("refused_series_total{limit=memory} = %v, want ≥ 5", got)
	}
	// HTTP: known series are taken, new ones answered 429 naming memory.
	if code, out := post(t, h, bombBody("pushed", 0, 10)); code != 200 || out["accepted"] != 10.0 {
		t.Fatalf("known series over the mark: %d %v", code, out)
	}
	code, out := post(t, h, bombBody("pushed", 100, 50))
	if code != http.StatusTooManyRequests || !strings.Contains(fmt.Sprint(out["error"]), "memory") ||
		!strings.Contains(fmt.Sprint(out["error"]), "high-water mark") {
		t.Fatalf("new series over the mark: %d %v", code, out)
	}
	// A new machine's stream is refused; a known machine's new agent
	// process is admitted.
	if _, err := e.connect("newcomer", 1); status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "memory is below the mark") {
		t.Fatalf("new machine over the mark: %v, want ResourceExhausted naming memory", err)
	}
	b, err := e.connect("old", 2)
	if err != nil {
		t.Fatalf("known machine's new agent process refused: %v", err)
	}
	b.defsRound(0, 20)
	b.batchAll(1, tick(3), 20, 3)
	b.waitAck(1)

	ballast.b = nil
	waitMemory(t, g, false)
	if code, out := post(t, h, bombBody("pushed", 100, 50)); code != 200 || out["accepted"] != 50.0 {
		t.Fatalf("after the memory was freed: %d %v", code, out)
	}
}

// The store's reserve (the rollup batch a pass builds for the
// admitted raw series) counts as memory in use: a reserve that reaches the high-water
// mark refuses new series, and once it is spent below the mark they are
// taken again.
func TestMemoryReserveCountsAsUsed(t *testing.T) {
	runtime.GC()
	var reserve atomic.Uint64
	g := newMemGuard(1<<40, reserve.Load, slog.New(slog.DiscardHandler))
	budget := int64(float64(g.used.Load()+256<<20) / MemoryHighWater) // high-water 256 MiB above what is in use now
	g = newMemGuard(budget, reserve.Load, slog.New(slog.DiscardHandler))
	if err := g.check(); err != nil {
		t.Fatalf("no reserve: %v", err)
	}
	reserve.Store(512 << 20)
	g.sample()
	err := g.check()
	if err == nil || !strings.Contains(err.Error(), "memory") {
		t.Fatalf("reserve of 512 MiB over a 256 MiB margin: check = %v, want the memory refusal", err)
	}
	reserve.Store(0)
	g.sample()
	if err := g.check(); err != nil {
		t.Fatalf("reserve spent: %v", err)
	}
}
