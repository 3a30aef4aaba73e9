package store

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// TestScaleRoundTrip: a value the agent rounded to d decimals (the double
// nearest k/10^d) is stored as the integer k and read back bit for bit,
// for every scale and every |k| < 2^51.
func TestScaleRoundTrip(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 5))
	for d := scale(0); d <= 6; d++ {
		p := math.Pow10(int(d))
		check := func(k float64) {
			for _, k := range []float64{k, -k} {
				v := k / p // what the agent stores: math.Round(x·10^d)/10^d
				if got := encode(d, v, false); got != k {
					t.Fatalf("scale %d: encode(%v) = %v, want %v", d, v, got, k)
				}
				if got := decode(d, encode(d, v, false)); math.Float64bits(got) != math.Float64bits(v) {
					t.Fatalf("scale %d: %v read back as %v", d, v, got)
				}
			}
		}
		for k := range 200000 {
			check(float64(k))
		}
		for _, lim := range []int64{1e6, 1e9, 1e12, 1<<51 - 1} {
			for range 100000 {
				check(float64(rnd.Int64N(lim + 1)))
			}
		}
		check(1<<51 - 1)
		// From 2^51 units on the double nearest k/10^d is too coarse to
		// give k back for sure: the value read back is within 2^-50 of
		// the one written, relative.
		for range 100000 {
			v := float64(1<<51+rnd.Int64N(1<<60)) / p
			if got := decode(d, encode(d, v, false)); math.Abs(got-v) > math.Abs(v)*0x1p-50 {
				t.Fatalf("scale %d: %v read back as %v", d, v, got)
			}
		}
		// Values with more decimals than the family are stored as sent
		// and read back bit for bit; so is float noise such as 0.1+0.2.
		for range 100000 {
			x := (rnd.Float64() - 0.5) * 1e6
			if got := decode(d, encode(d, x, false)); math.Float64bits(got) != math.Float64bits(x) {
				t.Fatalf("scale %d: %v read back as %v", d, x, got)
			}
		}
		if got := decode(d, encode(d, 0.1+0.2, false)); got != 0.1+0.2 {
			t.Fatalf("scale %d: 0.1+0.2 read back as %v", d, got)
		}
		// A rollup sum with float noise is stored as its exact integer.
		if d >= 2 {
			sum := 12.34 + 12.35 // 24.689999999999998
			if got := encode(d, sum, true); got != 2469*p/100 {
				t.Fatalf("scale %d: rollup sum %v stored as %v, want %v", d, sum, got, 2469*p/100)
			}
			if got := decode(d, encode(d, sum, true)); got != 24.69 {
				t.Fatalf("scale %d: rollup sum %v read back as %v, want 24.69", d, sum, got)
			}
		}
		// Past 2^53 nothing is rounded.
		big := float64(1<<53) / p * 3
		if got := encode(d, big, false); got != big*p {
			t.Fatalf("scale %d: encode(%v) = %v, want %v unrounded", d, big, got, big*p)
		}
	}
}

// TestScaleSpecialValues: NaN (stale markers with their payload) and ±Inf
// are stored and read back unchanged; noScale changes nothing.
func TestScaleSpecialValues(t *testing.T) {
	stale := math.Float64frombits(value.StaleNaN)
	for d := noScale; d <= 3; d++ {
		for _, v := range []float64{stale, math.NaN(), math.Inf(1), math.Inf(-1)} {
			got := decode(d, encode(d, v, false))
			if math.Float64bits(got) != math.Float64bits(v) && !(math.IsInf(v, 0) && got == v) {
				t.Errorf("scale %d: %v (bits %#x) read back as bits %#x", d, v, math.Float64bits(v), math.Float64bits(got))
			}
		}
		if d != noScale && !value.IsStaleNaN(encode(d, stale, false)) {
			t.Errorf("scale %d: stale marker not stored as one", d)
		}
	}
	if got := encode(noScale, 1.23456789, false); got != 1.23456789 {
		t.Errorf("noScale encode = %v", got)
	}
}

// TestScaleRefPacking: a ref carries its scale in the top byte, 0 stays 0,
// and a TSDB ref that reaches the top byte is an error.
func TestScaleRefPacking(t *testing.T) {
	for d := noScale; d <= maxScale; d++ {
		r, err := packRef(12345, d)
		if err != nil {
			t.Fatal(err)
		}
		if refScale(r) != d || r&refIDMask != 12345 {
			t.Errorf("scale %d: packed %#x unpacks to scale %d id %d", d, uint64(r), refScale(r), r&refIDMask)
		}
	}
	if r, err := packRef(0, 2); r != 0 || err != nil {
		t.Errorf("packRef(0) = %#x, %v; want 0", uint64(r), err)
	}
	if _, err := packRef(1<<refScaleShift, 2); err == nil {
		t.Error("packRef of a ref using the top byte: no error")
	}
}

// storedValues reads what the TSDB itself holds for name in db, bypassing
// the scaling: t → stored value.
func storedValues(t *testing.T, db *Tier, name string, extra ...*labels.Matcher) map[int64]float64 {
	t.Helper()
	q, err := db.DB.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ms := append([]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, name)}, extra...)
	set := q.Select(context.Background(), false, nil, ms...)
	out := map[int64]float64{}
	for set.Next() {
		it := set.At().Iterator(nil)
		for it.Next() == chunkenc.ValFloat {
			ts, v := it.At()
			out[ts] = v
		}
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func readScaleFile(t *testing.T, dir string) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, scaleFile))
	if err != nil {
		t.Fatal(err)
	}
	var st scaleJSON
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st.ScaledSince
}

// TestStoreScalesCatalogueValues: catalogue values are stored as scaled
// integers and read back exactly through every read path; other names,
// stale markers and values given with a ref are handled as well.
func TestStoreScalesCatalogueValues(t *testing.T) {
	skipUnlessTSDB(t) // the stored form of raw samples
	dir := t.TempDir()
	s, _ := openTest(t, dir, base.Add(time.Hour), nil)
	if since := readScaleFile(t, dir); since != math.MinInt64 {
		t.Fatalf("new directory: scaled_since = %d, want MinInt64", since)
	}
	cpu := series("cpu_usage_percent", "web1", "cpu", "total")
	temp := series("hwmon_temperature_celsius", "web1", "sensor", "core0")
	mem := series("memory_used_bytes", "web1")
	custom := series("custom_gauge", "web1")
	cpuVals := []float64{12.34, 0.01, 99.99, 33.33, 12.3456, 7.1}
	// 12.3456 has more decimals than the family: stored as sent.
	cpuWant := cpuVals
	appendRange(t, s, cpu, base, len(cpuVals), time.Second, func(i int) float64 { return cpuVals[i] })
	appendRange(t, s, temp, base, 3, time.Second, func(i int) float64 { return 45.125 + float64(i)/1000 })
	appendRange(t, s, mem, base, 3, time.Second, func(i int) float64 { return 21474836480 + float64(i)*4096 })
	customVal := func(i int) float64 { return 1.23456789 * float64(i+1) }
	appendRange(t, s, custom, base, 3, time.Second, customVal)
	at := func(i int) int64 { return base.Add(time.Duration(i) * time.Second).UnixMilli() }

	if got := storedValues(t, rawTSDB(t, s), "cpu_usage_percent"); got[at(0)] != 1234 || got[at(4)] != 12.3456 {
		t.Errorf("stored cpu values %v, want 1234 at 0 s and 12.3456 (as sent) at 4 s", got)
	}
	if got := storedValues(t, rawTSDB(t, s), "hwmon_temperature_celsius"); got[at(2)] != 45127 {
		t.Errorf("stored temperature %v, want 45127 at 2 s", got)
	}
	if got := storedValues(t, rawTSDB(t, s), "custom_gauge"); got[at(1)] != customVal(1) {
		t.Errorf("custom gauge stored as %v, want unscaled", got)
	}

	// Query (raw tier, one point per sample).
	res := mustQuery(t, s, Query{Metric: "cpu_usage_percent", Machine: "web1", From: base, To: base.Add(time.Minute), Step: time.Second})
	if len(res.Series) != 1 || len(res.Series[0].Points) != len(cpuWant) {
		t.Fatalf("query: %+v", res)
	}
	for i, p := range res.Series[0].Points {
		// Averages are rounded to the family's precision (RoundAverage),
		// min and max are the stored values.
		if p.Avg != metric.RoundAverage("cpu_usage_percent", cpuWant[i]) || p.Min != cpuWant[i] || p.Max != cpuWant[i] {
			t.Errorf("query point %d = %+v, want %v", i, p, cpuWant[i])
		}
	}
	// Export.
	exported := map[string][]float64{}
	if err := s.Export(context.Background(), Query{From: base, To: base.Add(time.Minute)}, func(name string, _ metric.Labels, _ int64, v float64) error {
		exported[name] = append(exported[name], v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	wantExport := map[string][]float64{
		"cpu_usage_percent":         cpuWant,
		"hwmon_temperature_celsius": {45.125, 45.126, 45.127},
		"memory_used_bytes":         {21474836480, 21474840576, 21474844672},
		"custom_gauge":              {customVal(0), customVal(1), customVal(2)},
	}
	for name, want := range wantExport {
		if !equalFloats(exported[name], want) {
			t.Errorf("export %s = %v, want %v", name, exported[name], want)
		}
	}
	// PromQL.
	eng := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	for i, want := range cpuWant {
		qry, err := eng.NewInstantQuery(context.Background(), s.Queryable(), nil, `cpu_usage_percent{machine="web1"}`, time.UnixMilli(at(i)))
		if err != nil {
			t.Fatal(err)
		}
		r := qry.Exec(context.Background())
		vec, err := r.Vector()
		if err != nil || len(vec) != 1 || vec[0].F != want {
			t.Errorf("promql at %d s = %v, %v; want %v", i, vec, err, want)
		}
		qry.Close()
	}
	// NewestSamples.
	var newest float64
	if err := s.NewestSamples(context.Background(), "hwmon_temperature_celsius", at(0), at(59), func(_ labels.Labels, _ int64, v float64) { newest = v }); err != nil {
		t.Fatal(err)
	}
	if newest != 45.127 {
		t.Errorf("newest temperature %v, want 45.127", newest)
	}
	// The chunk querier's chunks decode too, and re-encode when asked for
	// their bytes.
	cq, err := s.raw.ChunkQuerier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer cq.Close()
	cset := cq.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "cpu_usage_percent"))
	var fromChunks, fromBytes []float64
	for cset.Next() {
		for it := cset.At().Iterator(nil); it.Next(); {
			chk := it.At().Chunk
			for ci := chk.Iterator(nil); ci.Next() == chunkenc.ValFloat; {
				_, v := ci.At()
				fromChunks = append(fromChunks, v)
			}
			xor, err := chunkenc.FromData(chk.Encoding(), chk.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			for ci := xor.Iterator(nil); ci.Next() == chunkenc.ValFloat; {
				_, v := ci.At()
				fromBytes = append(fromBytes, v)
			}
		}
	}
	if !equalFloats(fromChunks, cpuWant) || !equalFloats(fromBytes, cpuWant) {
		t.Errorf("chunk querier: iterator %v, bytes %v; want %v", fromChunks, fromBytes, cpuWant)
	}

	// A stale marker goes through unchanged.
	app := s.Appender(context.Background())
	ref, err := app.Append(0, cpu, at(10), math.Float64frombits(value.StaleNaN))
	if err != nil {
		t.Fatal(err)
	}
	if refScale(storage.SeriesRef(ref)) != 2 {
		t.Errorf("ref %#x carries scale %d, want 2", uint64(ref), refScale(storage.SeriesRef(ref)))
	}
	// With the ref, no name lookup: the scale comes from the ref.
	if _, err := app.Append(ref, cpu, at(11), 55.55); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	stored := storedValues(t, rawTSDB(t, s), "cpu_usage_percent")
	if !value.IsStaleNaN(stored[at(10)]) || stored[at(11)] != 5555 {
		t.Errorf("stored stale marker %v and ref-appended value %v, want stale NaN and 5555", stored[at(10)], stored[at(11)])
	}
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestScaleRollups: the rollup tiers store min, max and sum scaled (the sum
// an exact integer) and count unscaled, and read them back exactly.
func TestScaleRollups(t *testing.T) {
	s, _ := openTest(t, "", base.Add(3*time.Hour), nil)
	cpu := series("cpu_usage_percent", "web1", "cpu", "total")
	appendRange(t, s, cpu, base, 3660, time.Second, func(i int) float64 { return float64(i%1000) / 100 })
	mustRollup(t, s)
	sums := storedValues(t, s.tier1m, "cpu_usage_percent", labels.MustNewMatcher(labels.MatchEqual, rollupLabel, "sum"))
	counts := storedValues(t, s.tier1m, "cpu_usage_percent", labels.MustNewMatcher(labels.MatchEqual, rollupLabel, "count"))
	if len(sums) < 60 || len(counts) != len(sums) {
		t.Fatalf("1m tier: %d sums, %d counts; want 60 or more, as many of each", len(sums), len(counts))
	}
	for ts, sum := range sums {
		var want int64
		for i := (ts - base.UnixMilli()) / 1000; i < (ts-base.UnixMilli())/1000+60; i++ {
			want += i % 1000
		}
		if sum != float64(want) || counts[ts] != 60 {
			t.Fatalf("bucket %d: stored sum %v, count %v; want %d and 60", ts, sum, counts[ts], want)
		}
	}
	res := rolledUp(t, s, Query{Metric: "cpu_usage_percent", Machine: "web1", From: base, To: base.Add(time.Hour), Step: time.Minute})
	if len(res.Series) != 1 || len(res.Series[0].Points) != 60 {
		t.Fatalf("rolled up: %+v", res)
	}
	for _, p := range res.Series[0].Points {
		i := (p.T - base.UnixMilli()) / 1000
		lo, hi := i%1000, (i+59)%1000
		if hi < lo { // the bucket wraps at 1000
			lo, hi = 0, 999
		}
		if p.Min != float64(lo)/100 || p.Max != float64(hi)/100 || p.Count != 60 {
			t.Errorf("bucket %d: %+v, want min %v max %v count 60", p.T, p, float64(lo)/100, float64(hi)/100)
		}
	}
}

// TestScaleUpgrade: a directory written before scaling is read exactly
// after the upgrade; new samples are stored scaled, a replay of old
// timestamps unscaled, and Query, Export, PromQL and rollups read across the
// boundary exactly.
func TestScaleUpgrade(t *testing.T) {
	skipUnlessTSDB(t) // the stored form of raw samples
	dir := t.TempDir()
	cpu := series("cpu_usage_percent", "web1", "cpu", "total")
	val := func(i int) float64 { return float64(1234+i) / 100 }
	// The old way: samples straight into the raw TSDB, unscaled.
	db, err := tsdb.Open(filepath.Join(dir, TierRaw), nil, nil, rawTierOptions(Options{RetentionRaw: DefaultRetentionRaw, OutOfOrderWindow: DefaultOutOfOrderWindow}), nil)
	if err != nil {
		t.Fatal(err)
	}
	app := db.Appender(context.Background())
	for i := range 60 {
		if _, err := app.Append(0, cpu, base.Add(time.Duration(i)*time.Second).UnixMilli(), val(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	upgrade := base.Add(2 * time.Minute)
	s, clk := openTest(t, dir, upgrade, nil)
	since := readScaleFile(t, dir)
	if since != upgrade.UnixMilli() {
		t.Fatalf("scaled_since = %d, want %d (the upgrade)", since, upgrade.UnixMilli())
	}
	// New samples, then a replay of the minute the old version missed.
	appendRange(t, s, cpu, upgrade, 120, time.Second, func(i int) float64 { return val(120 + i) })
	appendRange(t, s, cpu, base.Add(time.Minute), 60, time.Second, func(i int) float64 { return val(60 + i) })
	stored := storedValues(t, rawTSDB(t, s), "cpu_usage_percent")
	if stored[base.UnixMilli()] != 12.34 || stored[base.Add(time.Minute).UnixMilli()] != 12.94 || stored[upgrade.UnixMilli()] != 1354 {
		t.Fatalf("stored: old %v, replayed %v, new %v; want 12.34, 12.94, 1354",
			stored[base.UnixMilli()], stored[base.Add(time.Minute).UnixMilli()], stored[upgrade.UnixMilli()])
	}

	check := func(s *Store) {
		t.Helper()
		res := mustQuery(t, s, Query{Metric: "cpu_usage_percent", Machine: "web1", From: base, To: base.Add(4*time.Minute - time.Second), Step: time.Second})
		if len(res.Series) != 1 || len(res.Series[0].Points) != 240 {
			t.Fatalf("query: %+v", res)
		}
		for i, p := range res.Series[0].Points {
			if p.Avg != val(i) {
				t.Fatalf("query point %d = %v, want %v", i, p.Avg, val(i))
			}
		}
		i := 0
		if err := s.Export(context.Background(), Query{Metric: "cpu_usage_percent", From: base, To: base.Add(4*time.Minute - time.Second)}, func(_ string, _ metric.Labels, ts int64, v float64) error {
			if v != val(i) {
				return errors.New("export: value " + time.UnixMilli(ts).UTC().Format(time.RFC3339))
			}
			i++
			return nil
		}); err != nil || i != 240 {
			t.Fatalf("export: %v after %d values", err, i)
		}
		eng := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
		qry, err := eng.NewRangeQuery(context.Background(), s.Queryable(), nil, `cpu_usage_percent`, base, base.Add(4*time.Minute-time.Second), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer qry.Close()
		m, err := qry.Exec(context.Background()).Matrix()
		if err != nil || len(m) != 1 || len(m[0].Floats) != 240 {
			t.Fatalf("promql: %v, %v", m, err)
		}
		for i, p := range m[0].Floats {
			if p.F != val(i) {
				t.Fatalf("promql point %d = %v, want %v", i, p.F, val(i))
			}
		}
	}
	check(s)

	// Rollups across the boundary: buckets before it unscaled, after it
	// scaled; both read back exactly. Rollups are written per closed hour,
	// once the machine's out-of-order window has passed too.
	clk.Set(upgrade.Add(3 * time.Hour))
	mustRollup(t, s)
	sums := storedValues(t, s.tier1m, "cpu_usage_percent", labels.MustNewMatcher(labels.MatchEqual, rollupLabel, "max"))
	if sums[base.UnixMilli()] != val(59) || sums[upgrade.UnixMilli()] != 100*val(179) {
		t.Errorf("1m max stored %v before and %v after the upgrade, want %v and %v", sums[base.UnixMilli()], sums[upgrade.UnixMilli()], val(59), 100*val(179))
	}
	res := rolledUp(t, s, Query{Metric: "cpu_usage_percent", Machine: "web1", From: base, To: base.Add(3*time.Minute - time.Second), Step: time.Minute})
	if len(res.Series) != 1 || len(res.Series[0].Points) != 3 {
		t.Fatalf("rolled up: %+v", res)
	}
	for k, p := range res.Series[0].Points {
		if p.Min != val(60*k) || p.Max != val(60*k+59) || p.Count != 60 {
			t.Errorf("bucket %d: %+v, want min %v max %v", k, p, val(60*k), val(60*k+59))
		}
	}

	// Reopened, the directory keeps its boundary.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, _ := openTest(t, dir, upgrade.Add(3*time.Hour), nil)
	if got := readScaleFile(t, dir); got != since {
		t.Fatalf("reopened: scaled_since %d, want %d", got, since)
	}
	check(s2)
}

// TestScaleFileDamaged: a damaged scale.json refuses the open with a message
// saying what it is, rather than misreading the data.
func TestScaleFileDamaged(t *testing.T) {
	dir := t.TempDir()
	s, _ := openTest(t, dir, base, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, scaleFile), []byte("{garbage"), 0o640); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Options{Dir: dir})
	if err == nil {
		t.Fatal("open with a damaged scale.json: no error")
	}
	t.Log(err)
}

// TestCataloguePrecisionPinned pins every catalogue family's decimals.
func TestCataloguePrecisionPinned(t *testing.T) {
	pinned := map[string]int{
		"battery_capacity_percent":                    2,
		"battery_charge_coulombs":                     0,
		"battery_charge_full_coulombs":                0,
		"battery_charging":                            2,
		"battery_energy_full_joules":                  0,
		"battery_energy_joules":                       0,
		"battery_power_watts":                         2,
		"container_cpu_usage_percent":                 2,
		"container_io_read_bytes_per_second":          0,
		"container_io_write_bytes_per_second":         0,
		"container_memory_usage_bytes":                0,
		"container_network_receive_bytes_per_second":  0,
		"container_network_transmit_bytes_per_second": 0,
		"container_restarts_total":                    2,
		"cpu_usage_percent":                           2,
		"directory_files":                             2,
		"directory_scan_complete":                     2,
		"directory_scan_seconds":                      3,
		"directory_size_bytes":                        0,
		"disk_io_time_percent":                        2,
		"disk_read_bytes_per_second":                  0,
		"disk_write_bytes_per_second":                 0,
		"fan_speed_rpm":                               2,
		"filesystem_size_bytes":                       0,
		"filesystem_usage_percent":                    2,
		"filesystem_used_bytes":                       0,
		"gpu_frequency_mhz":                           2,
		"gpu_memory_total_bytes":                      0,
		"gpu_memory_used_bytes":                       0,
		"gpu_memory_utilization_percent":              2,
		"gpu_power_limit_watts":                       2,
		"gpu_power_watts":                             2,
		"gpu_process_memory_bytes":                    0,
		"gpu_temperature_celsius":                     3,
		"gpu_utilization_percent":                     2,
		"hwmon_temperature_celsius":                   3,
		"load1":                                       2,
		"load15":                                      2,
		"load5":                                       2,
		"memory_available_bytes":                      0,
		"memory_total_bytes":                          0,
		"memory_usage_percent":                        2,
		"memory_used_bytes":                           0,
		"network_receive_bytes_per_second":            0,
		"network_transmit_bytes_per_second":           0,
		"nvme_available_spare_percent":                2,
		"nvme_critical_warning":                       2,
		"nvme_media_errors_total":                     2,
		"nvme_wear_percent":                           2,
		"pressure_full_avg10_percent":                 2,
		"pressure_full_avg300_percent":                2,
		"pressure_full_avg60_percent":                 2,
		"pressure_full_seconds_total":                 3,
		"pressure_some_avg10_percent":                 2,
		"pressure_some_avg300_percent":                2,
		"pressure_some_avg60_percent":                 2,
		"pressure_some_seconds_total":                 3,
		"processes_blocked":                           2,
		"processes_running":                           2,
		"processes_state":                             2,
		"processes_total":                             2,
		"scrape_duration_seconds":                     3,
		"scrape_samples_post_metric_relabeling":       2,
		"scrape_samples_scraped":                      2,
		"smart_health_passed":                         2,
		"smart_offline_uncorrectable_sectors":         2,
		"smart_pending_sectors":                       2,
		"smart_power_on_seconds":                      3,
		"smart_reallocated_sectors":                   2,
		"smart_temperature_celsius":                   3,
		"swap_total_bytes":                            0,
		"swap_used_bytes":                             0,
		"systemd_unit_active":                         2,
		"systemd_unit_cpu_usage_percent":              2,
		"systemd_unit_failed":                         2,
		"systemd_unit_info":                           2,
		"systemd_unit_io_read_bytes_per_second":       0,
		"systemd_unit_io_write_bytes_per_second":      0,
		"systemd_unit_memory_bytes":                   0,
		"systemd_unit_restarts_total":                 2,
		"systemd_units_active":                        2,
		"systemd_units_failed":                        2,
		"textfile_mtime_seconds":                      3,
		"textfile_scrape_error":                       2,
		"thermal_zone_temperature_celsius":            3,
		"up":                                          2,
		"uptime_seconds":                              3,
	}
	for _, f := range metric.Catalogue {
		want, ok := pinned[f.Name]
		if !ok || f.Decimals != want || f.Decimals > maxScale {
			t.Errorf("family %s has %d decimals, pinned %d (pinned: %v). The store keeps %s's values multiplied by 10^decimals "+
				"(internal/store/scale.go): stored data depends on these precisions. Changing one needs a new epoch in the store "+
				"(a scale boundary like scale.json's scaled_since, per family) so that data written before still reads right.",
				f.Name, f.Decimals, want, ok, f.Name)
		}
	}
	if len(pinned) != len(metric.Catalogue) {
		t.Errorf("%d families pinned, the catalogue has %d: a family was removed; its stored data still needs its precision, so keep it pinned", len(pinned), len(metric.Catalogue))
	}
}
