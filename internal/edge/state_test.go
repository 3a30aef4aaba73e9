package edge

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/live"
)

// ts0 is a plausible sample time, ms since epoch.
var ts0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).UnixMilli()

func TestWindowBounds(t *testing.T) {
	const step, n = 1000, 300
	var w window
	// 1000 s of points at 4 per second: never more than n buckets kept,
	// one value per bucket (the newest).
	for i := 0; i < 4000; i++ {
		w.add(ts0+int64(i)*250, float64(i), step, n)
	}
	pts := w.points(step)
	if len(pts) != n || len(w.vals) != n {
		t.Fatalf("%d points, %d slots, want %d", len(pts), len(w.vals), n)
	}
	lastBucket := (ts0 + 3999*250) / step
	if first, last := pts[0], pts[n-1]; int64(last[0]) != lastBucket*step || int64(first[0]) != (lastBucket-n+1)*step || last[1] != 3999 {
		t.Fatalf("first %v last %v", first, last)
	}
	for i := 1; i < len(pts); i++ {
		if pts[i][0]-pts[i-1][0] != step {
			t.Fatalf("points %d and %d not one step apart: %v %v", i-1, i, pts[i-1], pts[i])
		}
	}

	// A late point inside the window lands in its bucket; one older than
	// the window is ignored.
	w.add((lastBucket-10)*step, -1, step, n)
	w.add((lastBucket-n)*step, -2, step, n)
	pts = w.points(step)
	if len(pts) != n || pts[n-11][1] != -1 || pts[0][1] == -2 {
		t.Fatalf("late points: %v … %v", pts[0], pts[n-11])
	}

	// A gap clears the skipped buckets; a gap longer than the window
	// leaves only the new point.
	w.add((lastBucket+5)*step, 7, step, n)
	pts = w.points(step)
	if len(pts) != n-4 || pts[len(pts)-1][1] != 7 || int64(pts[len(pts)-2][0]) != lastBucket*step {
		t.Fatalf("after a 5-bucket gap: %d points, last two %v", len(pts), pts[len(pts)-2:])
	}
	w.add((lastBucket+5+2*n)*step, 8, step, n)
	if pts = w.points(step); len(pts) != 1 || pts[0][1] != 8 {
		t.Fatalf("after a long gap: %v", pts)
	}
}

func pub(t *testing.T, s *State, msg string) ([]live.Event, error) {
	t.Helper()
	var m pubMessage
	if err := json.Unmarshal([]byte(msg), &m); err != nil {
		return nil, err
	}
	return s.apply(&m)
}

func mustPub(t *testing.T, s *State, msg string) []live.Event {
	t.Helper()
	evs, err := pub(t, s, msg)
	if err != nil {
		t.Fatalf("apply %s: %v", msg, err)
	}
	return evs
}

func metricsMsg(id string, ts int64, vals ...string) string {
	return fmt.Sprintf(`{"type":"metrics","machine":%q,"ts":%d,"metrics":[%s]}`, id, ts, strings.Join(vals, ","))
}

func val(name string, v float64) string {
	return fmt.Sprintf(`{"name":%q,"labels":{},"value":%v}`, name, v)
}

func TestStateValidation(t *testing.T) {
	s := newState(5*time.Minute, 300, 10)
	s.setPublisher(true)
	long := strings.Repeat("x", 300)
	many := make([]string, MaxSeriesPerMachine+1)
	for i := range many {
		many[i] = fmt.Sprintf(`{"name":"m","labels":{"i":"%d"},"value":1}`, i)
	}
	bad := map[string]string{
		"not an object":        `[1,2]`,
		"no type":              `{"machine":"a"}`,
		"unknown type":         `{"type":"exec","machine":"a"}`,
		"machine is an object": `{"type":"metrics","machine":{"id":"a"},"ts":` + fmt.Sprint(ts0) + `,"metrics":[]}`,
		"empty id":             metricsMsg("", ts0, val("load1", 1)),
		"id too long":          metricsMsg(long, ts0, val("load1", 1)),
		"control char in id":   metricsMsg("a\u0007b", ts0, val("load1", 1)),
		"bad metric name":      metricsMsg("a", ts0, val("load-1", 1)),
		"null value":           metricsMsg("a", ts0, `{"name":"load1","labels":{},"value":null}`),
		"missing value":        metricsMsg("a", ts0, `{"name":"load1","labels":{}}`),
		"string value":         metricsMsg("a", ts0, `{"name":"load1","labels":{},"value":"1"}`),
		"ts zero":              metricsMsg("a", 0, val("load1", 1)),
		"ts far future":        metricsMsg("a", 1<<60, val("load1", 1)),
		"label value too long": metricsMsg("a", ts0, `{"name":"m","labels":{"k":"`+long+`"},"value":1}`),
		"bad label name":       metricsMsg("a", ts0, `{"name":"m","labels":{"__x":"1"},"value":1}`),
		"machine label":        metricsMsg("a", ts0, `{"name":"m","labels":{"machine":"b"},"value":1}`),
		"too many series":      metricsMsg("a", ts0, many...),
		"machine labels long":  `{"type":"machine","machine":{"id":"a","labels":{"k":"` + long + `"},"online":true}}`,
		"machine with metrics": `{"type":"machine","machine":{"id":"a","labels":{},"online":true,"metrics":[` + val("load1", 1) + `]}}`,
		"snapshot part order":  `{"type":"snapshot","part":3,"machines":[]}`,
		"snapshot part < 0":    `{"type":"snapshot","part":-1,"machines":[]}`,
		"snapshot duplicate":   `{"type":"snapshot","part":0,"last":true,"machines":[{"id":"a","labels":{}},{"id":"a","labels":{}}]}`,
		"snapshot bad value":   `{"type":"snapshot","part":0,"last":true,"machines":[{"id":"a","labels":{},"metrics":[{"name":"load1","labels":{},"value":1,"ts":5}]}]}`,
	}
	for name, msg := range bad {
		if _, err := pub(t, s, msg); err == nil {
			t.Errorf("%s: accepted %s", name, clip(msg))
		}
	}
	if n := s.Len(); n != 0 {
		t.Fatalf("rejected messages created %d machines", n)
	}

	// A valid one passes and is re-encoded from the parsed values only.
	evs := mustPub(t, s, metricsMsg("web<1>", ts0, val("load1", 0.5), `{"name":"cpu_usage_percent","labels":{"cpu":"total"},"value":12,"extra":"<script>"}`))
	if len(evs) != 1 || evs[0].Type != live.EventMetrics || evs[0].Machine != "web<1>" {
		t.Fatalf("events %+v", evs)
	}
	if js := string(evs[0].JSON); strings.Contains(js, "extra") || strings.Contains(js, "<") {
		t.Fatalf("event JSON %s: unknown fields or unescaped markup passed through", js)
	}
}

func TestStateLimits(t *testing.T) {
	s := newState(5*time.Minute, 300, 3)
	s.setPublisher(true)
	for i := 0; i < 3; i++ {
		mustPub(t, s, metricsMsg(fmt.Sprint("m", i), ts0, val("load1", 1)))
	}
	if _, err := pub(t, s, metricsMsg("m3", ts0, val("load1", 1))); !errors.Is(err, errFull) {
		t.Fatalf("4th machine: %v, want errFull", err)
	}
	if _, err := pub(t, s, `{"type":"machine","machine":{"id":"m4","labels":{}}}`); !errors.Is(err, errFull) {
		t.Fatalf("4th machine by machine message: %v", err)
	}
	mustPub(t, s, metricsMsg("m0", ts0+1000, val("load1", 2))) // known machines go on

	// Series per machine: new series past the cap are left out and counted;
	// known ones still update.
	const offered = 80 // series "m" offered, in messages of 8
	for i := 0; i < offered; i += 8 {
		var vs []string
		for j := i; j < i+8; j++ {
			vs = append(vs, fmt.Sprintf(`{"name":"m","labels":{"i":"%d"},"value":%d}`, j, j))
		}
		mustPub(t, s, metricsMsg("m1", ts0, vs...))
	}
	m, _ := s.machine("m1")
	_, _, dropped := s.stats()
	if len(m.Metrics) != MaxSeriesPerMachine {
		t.Fatalf("m1 has %d series, cap %d", len(m.Metrics), MaxSeriesPerMachine)
	}
	if want := uint64(1 + offered - MaxSeriesPerMachine); dropped != want { // load1 is one of the kept
		t.Fatalf("dropped series %d, want %d", dropped, want)
	}
	evs := mustPub(t, s, metricsMsg("m1", ts0+1000, val("load1", 9), `{"name":"m","labels":{"i":"75"},"value":1}`))
	if len(evs) != 1 || strings.Contains(string(evs[0].JSON), `"75"`) || !strings.Contains(string(evs[0].JSON), `"value":9`) {
		t.Fatalf("event for a capped series: %s", evs[0].JSON)
	}
}

func TestStateSnapshotAndPublisher(t *testing.T) {
	s := newState(5*time.Minute, 300, 100)
	s.setPublisher(true)
	mustPub(t, s, metricsMsg("gone", ts0, val("load1", 1)))
	mustPub(t, s, metricsMsg("stay", ts0, val("load1", 1), val("memory_usage_percent", 10)))

	// A two-part snapshot: machines it does not list are removed only at
	// the last part; series the snapshot does not list are removed.
	evs := mustPub(t, s, fmt.Sprintf(`{"type":"snapshot","part":0,"machines":[{"id":"stay","labels":{"env":"prod"},"online":true,"metrics":[{"name":"memory_usage_percent","labels":{},"value":20,"ts":%d}]}]}`, ts0+1000))
	if s.Len() != 2 || len(evs) != 2 {
		t.Fatalf("after part 0: %d machines, events %d", s.Len(), len(evs))
	}
	if _, err := pub(t, s, `{"type":"snapshot","part":2,"last":true,"machines":[]}`); err == nil {
		t.Fatal("part 2 after part 0 accepted")
	}
	evs = mustPub(t, s, fmt.Sprintf(`{"type":"snapshot","part":1,"last":true,"machines":[{"id":"new","labels":{},"online":false,"last_seen":"2026-11-22T09:00:00Z","metrics":[]}]}`))
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type+":"+ev.Machine)
	}
	if strings.Join(types, " ") != "machine:new remove:gone" {
		t.Fatalf("events of the last part: %v", types)
	}
	list := s.list(false)
	if len(list) != 2 || list[0].ID != "new" || list[1].ID != "stay" || list[1].Labels["env"] != "prod" || !list[1].Online || list[0].Online {
		t.Fatalf("machines %+v", list)
	}
	if ms := list[1].Metrics; len(ms) != 1 || ms[0].Name != "memory_usage_percent" || ms[0].Value != 20 {
		t.Fatalf("stay's metrics %+v", ms)
	}
	// The window kept both memory points (the earlier one and the snapshot's).
	m, _ := s.machine("stay")
	if pts := m.Metrics[0].Points; len(pts) != 2 || pts[0][1] != 10 || pts[1][1] != 20 {
		t.Fatalf("window %v", pts)
	}

	// Without a publisher nothing is online; the browser hears about it.
	ev := s.setPublisher(false)
	if ev.Type != typeStatus || string(ev.JSON) != `{"type":"status","publisher":false}` {
		t.Fatalf("status event %s", ev.JSON)
	}
	if list := s.list(false); list[1].Online {
		t.Fatal("online without a publisher")
	}
	// A snapshot part interrupted by a publisher change does not continue.
	mustPub(t, s, `{"type":"snapshot","part":0,"machines":[]}`)
	s.setPublisher(true)
	if _, err := pub(t, s, `{"type":"snapshot","part":1,"last":true,"machines":[]}`); err == nil {
		t.Fatal("snapshot continued across publishers")
	}
}

// TestStateRemove: the hub's remove message (a forgotten machine) drops
// the machine with its values and tells browsers; an unknown machine is no
// error, a malformed message changes nothing.
func TestStateRemove(t *testing.T) {
	s := newState(5*time.Minute, 300, 2)
	s.setPublisher(true)
	mustPub(t, s, metricsMsg("gone", ts0, val("load1", 1)))
	mustPub(t, s, metricsMsg("stay", ts0, val("load1", 2)))
	v0 := s.Version()
	for _, bad := range []string{
		`{"type":"remove"}`,
		`{"type":"remove","machine":null}`,
		`{"type":"remove","machine":{"id":"gone"}}`,
		`{"type":"remove","machine":""}`,
		`{"type":"remove","machine":"go\u0000ne"}`,
		`{"type":"remove","machine":"` + strings.Repeat("x", 300) + `"}`,
	} {
		if evs, err := pub(t, s, bad); err == nil || len(evs) > 0 {
			t.Errorf("%s: accepted (events %d)", clip(bad), len(evs))
		}
	}
	if s.Len() != 2 || s.Version() != v0 {
		t.Fatalf("rejected removes changed the state: %d machines", s.Len())
	}

	evs := mustPub(t, s, `{"type":"remove","machine":"gone"}`)
	if len(evs) != 1 || evs[0].Type != typeRemove || evs[0].Machine != "gone" || string(evs[0].JSON) != `{"type":"remove","machine":"gone"}` {
		t.Fatalf("events %+v", evs)
	}
	if list := s.list(false); len(list) != 1 || list[0].ID != "stay" || s.Version() == v0 {
		t.Fatalf("after remove: %+v", list)
	}
	if _, ok := s.machine("gone"); ok {
		t.Fatal("removed machine still answered")
	}
	if evs := mustPub(t, s, `{"type":"remove","machine":"never-seen"}`); len(evs) != 0 {
		t.Fatalf("remove of an unknown machine: events %+v", evs)
	}
	// Its slot is free again (--max-machines 2); if it sends again, it
	// starts afresh, without its old series.
	mustPub(t, s, metricsMsg("gone", ts0+1000, val("memory_usage_percent", 4)))
	if m, ok := s.machine("gone"); !ok || len(m.Metrics) != 1 || m.Metrics[0].Name != "memory_usage_percent" {
		t.Fatalf("machine back after remove: %+v", m)
	}
}

// TestStateCoalescing: a browser that does not keep up gets the newest
// values per machine, not a growing backlog (the edge's fan-out is a
// live.State: bounded, per-machine coalescing queues).
func TestStateCoalescing(t *testing.T) {
	srv, err := New(Options{ListenHTTP: "127.0.0.1:0", Key: testKey, WSQueue: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	slow := srv.fan.Subscribe(1)
	defer slow.Close()
	for i := 0; i < 500; i++ {
		for _, id := range []string{"a", "b"} {
			srv.onPublish([]byte(metricsMsg(id, ts0+int64(i)*1000, val("load1", float64(i)))))
		}
	}
	last := map[string]int64{}
	n := 0
	timeout := time.After(5 * time.Second)
	for last["a"] != ts0+499000 || last["b"] != ts0+499000 {
		select {
		case ev := <-slow.C():
			var m struct{ Ts int64 }
			_ = json.Unmarshal(ev.JSON, &m)
			if m.Ts < last[ev.Machine] {
				t.Fatalf("%s went back from %d to %d", ev.Machine, last[ev.Machine], m.Ts)
			}
			last[ev.Machine] = m.Ts
			n++
		case <-timeout:
			t.Fatalf("newest values not delivered: %v after %d events", last, n)
		}
	}
	if n > 10 {
		t.Fatalf("slow subscriber got %d of 1000 events: not coalesced", n)
	}
	if slow.Dropped() {
		t.Fatal("coalescable events dropped the subscriber")
	}
	if srv.rejected.Load() != 0 || srv.accepted.Load() != 1000 {
		t.Fatalf("accepted %d rejected %d", srv.accepted.Load(), srv.rejected.Load())
	}
}

func FuzzStateApply(f *testing.F) {
	f.Add([]byte(metricsMsg("a", ts0, val("load1", 1))))
	f.Add([]byte(`{"type":"snapshot","part":0,"last":true,"machines":[{"id":"a","labels":{"k":"v"},"online":true,"metrics":[{"name":"x","labels":{"l":"1"},"value":1,"ts":1795639048000}]}]}`))
	f.Add([]byte(`{"type":"machine","machine":{"id":"a","labels":{},"online":true,"last_seen":"2026-11-22T09:00:00Z"}}`))
	f.Add([]byte(`{"type":"metrics","machine":"a","ts":1795639048000,"metrics":[{"name":"m","labels":{"a":"b"},"value":1e308}]}`))
	f.Add([]byte(`{"type":"remove","machine":"a"}`))
	s := newState(time.Minute, 60, 20)
	s.setPublisher(true)
	f.Fuzz(func(t *testing.T, b []byte) {
		var m pubMessage
		if json.Unmarshal(b, &m) != nil {
			return
		}
		evs, err := s.apply(&m)
		if err != nil && len(evs) > 0 {
			t.Fatal("events from a rejected message")
		}
		for _, ev := range evs {
			if !json.Valid(ev.JSON) {
				t.Fatalf("invalid event JSON %q", ev.JSON)
			}
		}
		for _, am := range s.list(true) {
			if len(am.Metrics) > MaxSeriesPerMachine {
				t.Fatalf("%d series", len(am.Metrics))
			}
			for _, v := range am.Metrics {
				if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) {
					t.Fatal("non-finite value stored")
				}
			}
		}
		if s.Len() > 20 {
			t.Fatalf("%d machines, limit 20", s.Len())
		}
	})
}

// TestStateMemoryBound measures the heap a full window costs per machine
// with the default public set (13 series, as a host with a few
// filesystems and interfaces sends) and checks the documented bound.
func TestStateMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates ~100 MB")
	}
	const machines, points = 2000, 300
	names := []string{`"cpu_usage_percent","labels":{"cpu":"total"}`, `"memory_usage_percent","labels":{}`, `"load1","labels":{}`, `"load5","labels":{}`, `"load15","labels":{}`,
		`"filesystem_usage_percent","labels":{"device":"/dev/sda1","fstype":"ext4","mountpoint":"/"}`, `"filesystem_usage_percent","labels":{"device":"/dev/sdb1","fstype":"xfs","mountpoint":"/data"}`,
		`"network_receive_bytes_per_second","labels":{"interface":"eth0"}`, `"network_transmit_bytes_per_second","labels":{"interface":"eth0"}`,
		`"network_receive_bytes_per_second","labels":{"interface":"eth1"}`, `"network_transmit_bytes_per_second","labels":{"interface":"eth1"}`,
		`"uptime_seconds","labels":{}`, `"processes_total","labels":{}`}
	var vals []string
	for _, n := range names {
		vals = append(vals, `{"name":`+n+`,"value":12.5}`)
	}
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	s := newState(5*time.Minute, points, machines)
	s.setPublisher(true)
	for i := 0; i < machines; i++ {
		var m pubMessage
		if err := json.Unmarshal([]byte(metricsMsg(fmt.Sprintf("machine-%05d.example.com", i), ts0, vals...)), &m); err != nil {
			t.Fatal(err)
		}
		if _, err := s.apply(&m); err != nil {
			t.Fatal(err)
		}
	}
	perMachine := float64(heap()-before) / machines
	runtime.KeepAlive(s)
	t.Logf("%d machines × %d series × %d-point windows: %.1f KiB per machine (%.0f MiB at --max-machines 10000)", machines, len(names), points, perMachine/1024, perMachine*10000/(1<<20))
	if perMachine > 32<<10 {
		t.Errorf("%.1f KiB per machine, documented bound 32 KiB", perMachine/1024)
	}
}
