package web

import (
	"context"
	"fmt"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// BenchmarkWSMetricsEvent measures the hub's live fan-out for one
// dashboard: one op is one batch of a machine's series through
// live.Update (encoding, queueing), the /ws handler's write and a client's
// read of the whole message over loopback TCP, one at a time (so ns/op is
// the round trip). cpu-ns/op is the process's user+system CPU time (hub
// side and client together), which load on the machine disturbs less than
// wall time.
func BenchmarkWSMetricsEvent(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("series=%d", n), func(b *testing.B) { benchWSEvent(b, n) })
	}
}

func benchWSEvent(b *testing.B, nseries int) {
	lv, err := live.New(live.Options{})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(Options{Live: lv, History: &fakeHistory{}})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	defer srv.Close()
	sr := make([]*live.Series, nseries)
	vals := make([]float64, nseries)
	for i := range sr {
		sr[i] = live.NewSeries("bench_gauge", metric.Labels{{Name: "i", Value: fmt.Sprint(i)}})
		vals[i] = 12345.678901 + float64(i)/7
	}
	lv.Update("bench-1", 1, sr, vals)
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+ts.URL[len("http"):]+"/ws", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(64 << 20)
	if _, _, err := c.Read(ctx); err != nil { // snapshot
		b.Fatal(err)
	}
	size := 0
	cpu0 := cpuTime(b)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		lv.Update("bench-1", int64(i+2), sr, vals)
		_, msg, err := c.Read(ctx)
		if err != nil {
			b.Fatal(err)
		}
		size = len(msg)
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(size), "msg-bytes")
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
