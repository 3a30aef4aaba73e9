// Command promqlbench measures the hub's PromQL API next to a real
// Prometheus on identical data: it generates counters for -machines ×
// -series-per-machine series every -interval over -hours, backfills
// Prometheus with `promtool tsdb create-blocks-from openmetrics`, appends
// the same samples to a store (internal/store, as the hub writes them) and
// serves it with internal/promapi (the hub's query API) on loopback, then
// times the same queries against both, alternating, and prints a table
// (docs/benchmarks.md).
//
//	go run ./scripts/promqlbench -hours 24 -runs 7
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/sysmonstm/sysmonstm/internal/promapi"
	"github.com/sysmonstm/sysmonstm/internal/store"
)

func main() {
	var (
		machines   = flag.Int("machines", 10, "machines")
		perMachine = flag.Int("series-per-machine", 100, "series of each machine")
		hours      = flag.Int("hours", 24, "hours of data, ending a minute ago")
		interval   = flag.Duration("interval", 15*time.Second, "sample interval")
		runs       = flag.Int("runs", 7, "runs of each query on each server")
		prom       = flag.String("prometheus", "prometheus", "prometheus binary")
		promtool   = flag.String("promtool", "promtool", "promtool binary")
		cpuProfile = flag.String("cpuprofile", "", "write a CPU profile of the hub's query runs to `FILE`")
		keep       = flag.Bool("keep", false, "keep the work directory")
	)
	flag.Parse()
	if err := run(*machines, *perMachine, *hours, *interval, *runs, *prom, *promtool, *cpuProfile, *keep); err != nil {
		log.Fatal(err)
	}
}

// workload is the benchmark's data: series bench_counter_total{machine,
// dev}, one sample of each every step from start to end (ms).
type workload struct {
	machines, perMachine int
	start, end, step     int64
}

func (w workload) labels(m, d int) labels.Labels {
	return labels.FromStrings("__name__", "bench_counter_total", "dev", fmt.Sprintf("d%03d", d), "machine", fmt.Sprintf("m%02d", m))
}

// each calls f with every sample, series by series (Prometheus' backfill
// wants each series' samples together); the values are counters rising by
// a random whole number 0-99 each step, the same for every call.
func (w workload) each(f func(series int, ls labels.Labels, t int64, v float64) error) error {
	for m := range w.machines {
		for d := range w.perMachine {
			ls, id := w.labels(m, d), m*w.perMachine+d
			rng := rand.New(rand.NewPCG(uint64(id), 1))
			v := float64(rng.IntN(1000))
			for t := w.start; t <= w.end; t += w.step {
				if err := f(id, ls, t, v); err != nil {
					return err
				}
				v += float64(rng.IntN(100))
			}
		}
	}
	return nil
}

func run(machines, perMachine, hours int, interval time.Duration, runs int, prom, promtool, cpuProfile string, keep bool) error {
	dir, err := os.MkdirTemp("", "promqlbench")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	end := time.Now().Add(-time.Minute).Truncate(interval)
	w := workload{machines, perMachine, end.Add(-time.Duration(hours) * time.Hour).UnixMilli(), end.UnixMilli(), interval.Milliseconds()}
	n := machines * perMachine * int((w.end-w.start)/w.step+1)
	log.Printf("%d series, %d samples each, %d samples in all; work dir %s", machines*perMachine, n/(machines*perMachine), n, dir)

	t0 := time.Now()
	promURL, stop, err := startPrometheus(dir, prom, promtool, w)
	if err != nil {
		return err
	}
	defer stop()
	log.Printf("prometheus backfilled and ready in %s", time.Since(t0).Round(time.Second))

	t0 = time.Now()
	hubURL, closeHub, err := startHub(dir, w)
	if err != nil {
		return err
	}
	defer closeHub()
	log.Printf("store written and compacted in %s", time.Since(t0).Round(time.Second))

	endS := fmt.Sprint(end.Unix())
	queries := []struct{ name, path string }{
		{fmt.Sprintf("query_range of %d series over %d h, 15 s step", perMachine, hours), "/api/v1/query_range?" + url.Values{"query": {`bench_counter_total{machine="m00"}`}, "start": {fmt.Sprint(end.Add(-time.Duration(hours) * time.Hour).Unix())}, "end": {endS}, "step": {"15"}}.Encode()},
		{fmt.Sprintf("rate(x[5m]) over %d series, instant", machines*perMachine), "/api/v1/query?" + url.Values{"query": {`rate(bench_counter_total[5m])`}, "time": {endS}}.Encode()},
		{fmt.Sprintf("rate(x[5m]) over %d series, 1 h at 15 s step", machines*perMachine), "/api/v1/query_range?" + url.Values{"query": {`rate(bench_counter_total[5m])`}, "start": {fmt.Sprint(end.Add(-time.Hour).Unix())}, "end": {endS}, "step": {"15"}}.Encode()},
		{fmt.Sprintf("sum by (machine) (rate(x[5m])) over %d h, 5 m step", hours), "/api/v1/query_range?" + url.Values{"query": {`sum by (machine) (rate(bench_counter_total[5m]))`}, "start": {fmt.Sprint(end.Add(-time.Duration(hours) * time.Hour).Unix())}, "end": {endS}, "step": {"300"}}.Encode()},
	}
	fmt.Printf("| query | answer | Prometheus 2.42 median (min) | hub median (min) | hub / Prometheus |\n|---|---|---|---|---|\n")
	for _, q := range queries {
		var pt, ht []time.Duration
		var pSize, hSize string
		for i := range runs + 1 { // the first run of each warms caches and is not counted
			d, size, err := timeGet(promURL + q.path)
			if err != nil {
				return fmt.Errorf("prometheus %s: %w", q.name, err)
			}
			d2, size2, err := timeGet(hubURL + q.path)
			if err != nil {
				return fmt.Errorf("hub %s: %w", q.name, err)
			}
			if i > 0 {
				pt, ht = append(pt, d), append(ht, d2)
			}
			pSize, hSize = size, size2
		}
		if pSize != hSize {
			return fmt.Errorf("%s: prometheus answers %s, the hub %s", q.name, pSize, hSize)
		}
		pm, hm := median(pt), median(ht)
		fmt.Printf("| %s | %s | %s (%s) | %s (%s) | %.2f× |\n", q.name, hSize, ms(pm), ms(slices.Min(pt)), ms(hm), ms(slices.Min(ht)), float64(hm)/float64(pm))
	}
	if cpuProfile == "" {
		return nil
	}
	// A separate pass under the profiler: the hub's side only, answers
	// read and discarded.
	prof, err := os.Create(cpuProfile)
	if err != nil {
		return err
	}
	defer prof.Close()
	if err := pprof.StartCPUProfile(prof); err != nil {
		return err
	}
	defer pprof.StopCPUProfile()
	for _, q := range queries {
		for range runs {
			resp, err := http.Get(hubURL + q.path)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	return nil
}

// timeGet GETs u, reads the whole answer and returns the time it took and
// the answer's size ("N series, M points").
func timeGet(u string) (time.Duration, string, error) {
	t0 := time.Now()
	resp, err := http.Get(u)
	if err != nil {
		return 0, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	if err != nil {
		return 0, "", err
	}
	var a struct {
		Status string
		Error  string
		Data   struct {
			Result []struct {
				Value  json.RawMessage
				Values []json.RawMessage
			}
		}
	}
	if err := json.Unmarshal(b, &a); err != nil || a.Status != "success" {
		return 0, "", fmt.Errorf("answer %d %s: %v %s", resp.StatusCode, a.Error, err, b[:min(len(b), 200)])
	}
	points := 0
	for _, r := range a.Data.Result {
		points += len(r.Values)
		if r.Value != nil {
			points++
		}
	}
	return d, fmt.Sprintf("%d series, %d points", len(a.Data.Result), points), nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// startPrometheus backfills w into a new data directory and serves it.
func startPrometheus(dir, prom, promtool string, w workload) (string, func(), error) {
	om := filepath.Join(dir, "data.om")
	f, err := os.Create(om)
	if err != nil {
		return "", nil, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	err = w.each(func(_ int, ls labels.Labels, t int64, v float64) error {
		_, err := fmt.Fprintf(bw, "bench_counter_total{dev=%q,machine=%q} %v %.3f\n", ls.Get("dev"), ls.Get("machine"), v, float64(t)/1000)
		return err
	})
	if err == nil {
		_, err = bw.WriteString("# EOF\n")
	}
	if err = errors.Join(err, bw.Flush(), f.Close()); err != nil {
		return "", nil, err
	}
	data := filepath.Join(dir, "prometheus")
	if out, err := exec.Command(promtool, "tsdb", "create-blocks-from", "openmetrics", om, data).CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("promtool tsdb create-blocks-from openmetrics: %v\n%s", err, out)
	}
	_ = os.Remove(om)
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("global: {}\n"), 0o600); err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(prom, "--config.file="+cfg, "--storage.tsdb.path="+data, "--web.listen-address="+addr, "--storage.tsdb.retention.time=30d", "--log.level=warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return "http://" + addr, stop, nil
			}
		}
	}
	stop()
	return "", nil, errors.New("prometheus did not become ready")
}

// startHub appends w to a new store, compacts its raw tier into blocks
// as the hub's TSDB does, and serves promapi over it on loopback.
func startHub(dir string, w workload) (string, func(), error) {
	s, err := store.Open(store.Options{Dir: filepath.Join(dir, "hub"), RetentionRaw: 48 * time.Hour})
	if err != nil {
		return "", nil, err
	}
	ctx := context.Background()
	refs := make([]store.SeriesRef, w.machines*w.perMachine)
	app, pending := s.Appender(ctx), 0
	// Time order across series, as agents send them.
	type cursor struct {
		ls  labels.Labels
		rng *rand.Rand
		v   float64
	}
	cs := make([]cursor, len(refs))
	for m := range w.machines {
		for d := range w.perMachine {
			id := m*w.perMachine + d
			rng := rand.New(rand.NewPCG(uint64(id), 1))
			cs[id] = cursor{w.labels(m, d), rng, float64(rng.IntN(1000))}
		}
	}
	for t := w.start; t <= w.end; t += w.step {
		for id := range cs {
			c := &cs[id]
			if refs[id], err = app.Append(refs[id], c.ls, t, c.v); err != nil {
				return "", nil, fmt.Errorf("append: %w", err)
			}
			c.v += float64(c.rng.IntN(100))
			if pending++; pending == 100_000 {
				if err := app.Commit(); err != nil {
					return "", nil, err
				}
				app, pending = s.Appender(ctx), 0
			}
		}
	}
	if err := app.Commit(); err != nil {
		return "", nil, err
	}
	if err := s.Raw().Compact(ctx); err != nil {
		return "", nil, err
	}
	mux := http.NewServeMux()
	for _, rt := range promapi.New(promapi.Options{Queryable: s.Queryable()}).Routes() {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close(); _ = s.Close() }, nil
}
