package loadgen

import (
	"bytes"
	"strconv"
	"testing"
)

func TestWatcherReadsMetricsHead(t *testing.T) {
	w := &watcher{prefix: []byte(`"machine":"loadgen-`)}
	for _, c := range []struct {
		msg string
		ts  int64
		ok  bool
	}{
		{`{"type":"metrics","machine":"loadgen-07","ts":1700000000123,"metrics":[{"name":"a","labels":{},"value":1}]}`, 1700000000123, true},
		{`{"type":"metrics","machine":"other-1","ts":1700000000123,"metrics":[]}`, 0, false},
		{`{"type":"machine","machine":"loadgen-07","ts":1}`, 0, false},
		{`{"type":"metrics","machine":"loadgen-07","ts":12x,"metrics":[]}`, 0, false},
		{`{"type":"metrics","machine":"loadgen-07","ts":12`, 0, false},
		{``, 0, false},
	} {
		ts, ok := w.metricsTs([]byte(c.msg))
		if ts != c.ts || ok != c.ok {
			t.Errorf("%s: %d %v, want %d %v", c.msg, ts, ok, c.ts, c.ok)
		}
	}
}

func TestLatencySummary(t *testing.T) {
	ms := make([]float64, 0, 200)
	for i := 200; i >= 1; i-- {
		ms = append(ms, float64(i)/2)
	}
	got := latencySummary(ms)
	if got.Events != 200 || got.P50Ms != 50 || got.P99Ms != 99 || got.MaxMs != 100 {
		t.Fatalf("%+v", got)
	}
	if e := latencySummary(nil); e.Events != 0 || e.MaxMs != 0 {
		t.Fatalf("%+v", e)
	}
}

// FuzzWatcherMetricsTs feeds the live-stream head parser arbitrary
// messages: it never panics, and it takes only metrics events of the run's
// machines whose `"ts":` field is a number.
func FuzzWatcherMetricsTs(f *testing.F) {
	f.Add([]byte(`{"type":"metrics","machine":"loadgen-07","ts":1700000000123,"metrics":[]}`))
	f.Add([]byte(`{"type":"metrics","machine":"loadgen-","ts":-1,`))
	f.Add([]byte(`{"type":"metrics",`))
	w := &watcher{prefix: []byte(`"machine":"loadgen-`)}
	f.Fuzz(func(t *testing.T, msg []byte) {
		ts, ok := w.metricsTs(msg)
		if !ok {
			return
		}
		i := bytes.Index(msg, []byte(`,"ts":`))
		if !bytes.HasPrefix(msg, append(append([]byte{}, metricsPrefix...), w.prefix...)) || i < 0 {
			t.Fatalf("ts %d taken from %q", ts, msg)
		}
		rest := msg[i+len(`,"ts":`):]
		if v, err := strconv.ParseInt(string(rest[:bytes.IndexByte(rest, ',')]), 10, 64); err != nil || v != ts {
			t.Fatalf("ts %d, the message says %q", ts, rest)
		}
	})
}
