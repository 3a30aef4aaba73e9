package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

const (
	// maxSamplesPerRequest groups machines into one WriteRequest up to about
	// this many samples (Prometheus' max_samples_per_send default).
	maxSamplesPerRequest = 2000
	rwWorkers            = 8
	rwTimeout            = 10 * time.Second
)

// rwMachine is one simulated machine with its series' remote-write label
// sets, built once.
type rwMachine struct {
	w      *Workload
	labels [][]prompb.Label // per series: __name__, machine and series labels, sorted
}

// rwRequest is one WriteRequest on its way.
type rwRequest struct {
	body    []byte
	samples int64
}

// runRemoteWrite sends the workload to opts.RemoteWrite: per tick one
// WriteRequest per group of machines, timestamps = the tick.
func runRemoteWrite(ctx context.Context, opts Options) (Summary, error) {
	machines := make([]*rwMachine, opts.Machines)
	for i := range machines {
		machines[i] = newRWMachine(NewWorkload(i, opts.Series, opts.Seed), opts.machineID(i))
	}
	perReq := max(1, maxSamplesPerRequest/max(1, opts.Series))

	var sent, acked, errs atomic.Int64
	var errLogged atomic.Bool
	why := newReasons()
	client := &http.Client{Timeout: rwTimeout}
	queue := make(chan rwRequest, rwWorkers*2)
	var wg sync.WaitGroup
	for range rwWorkers {
		wg.Go(func() {
			for req := range queue {
				if err := postRW(client, opts.RemoteWrite, opts.Token, req.body); err != nil {
					errs.Add(1)
					why.add(err.Error())
					if !errLogged.Swap(true) {
						opts.Logger.Warn("remote write failed (logged once; see errors in the summary)", "url", opts.RemoteWrite, "err", err)
					}
					continue
				}
				acked.Add(req.samples)
			}
		})
	}

	start := time.Now()
	gctx, cancel := runUntil(ctx, opts.Duration)
	defer cancel()
	iv := opts.Interval.Milliseconds()
	var last int64
	for gctx.Err() == nil {
		nowMs := time.Now().UnixMilli()
		next := max(nowMs-nowMs%iv+iv, last+iv)
		t := time.NewTimer(time.Duration(next-nowMs) * time.Millisecond)
		select {
		case <-gctx.Done():
			t.Stop()
			continue
		case <-t.C:
		}
		last = next
		ts := time.UnixMilli(next)
		for lo := 0; lo < len(machines); lo += perReq {
			req := buildWriteRequest(machines[lo:min(lo+perReq, len(machines))], ts)
			sent.Add(req.samples)
			select {
			case queue <- req:
			case <-gctx.Done(): // stop generating; requests in the queue still go
				sent.Add(-req.samples)
			}
			if gctx.Err() != nil {
				break
			}
		}
	}
	elapsed := time.Since(start)
	close(queue)
	wg.Wait()

	s := Summary{
		SentSamples:      sent.Load(),
		AckedSamples:     acked.Load(),
		Machines:         opts.Machines,
		SeriesPerMachine: opts.Series,
		Ticks:            TicksSync, // a request carries many machines' samples of one tick
		Errors:           errs.Load(),
		ErrorReasons:     why.list(),
	}
	summarize(&s, elapsed)
	return s, nil
}

func newRWMachine(w *Workload, id string) *rwMachine {
	m := &rwMachine{w: w, labels: make([][]prompb.Label, len(w.series))}
	for i, s := range w.series {
		ls := make([]prompb.Label, 0, len(s.labels)+2)
		ls = append(ls, prompb.Label{Name: "__name__", Value: s.name}, prompb.Label{Name: metric.MachineLabel, Value: id})
		for _, l := range s.labels {
			ls = append(ls, prompb.Label{Name: l.Name, Value: l.Value})
		}
		sort.Slice(ls, func(a, b int) bool { return ls[a].Name < ls[b].Name })
		m.labels[i] = ls
	}
	return m
}

// buildWriteRequest ticks every machine to ts and encodes their samples as
// one snappy-compressed WriteRequest.
func buildWriteRequest(machines []*rwMachine, ts time.Time) rwRequest {
	var wr prompb.WriteRequest
	tsMs := ts.UnixMilli()
	for _, m := range machines {
		samples := m.w.Tick(ts)
		for i, s := range samples {
			wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{
				Labels:  m.labels[i],
				Samples: []prompb.Sample{{Value: s.Value, Timestamp: tsMs}},
			})
		}
	}
	raw, err := wr.Marshal()
	if err != nil { // only on a bug in the generated code
		panic(fmt.Sprintf("loadgen: marshal write request: %v", err))
	}
	return rwRequest{body: snappy.Encode(nil, raw), samples: int64(len(wr.Timeseries))}
}

// postRW sends one encoded WriteRequest, with token (if any) as its bearer;
// any non-2xx answer is an error.
func postRW(client *http.Client, url, token string, body []byte) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set("User-Agent", "sysmonstm-loadgen")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
