package history

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// engine is a real TSDB started for a test.
type engine struct {
	name string
	url  string // query API base
	// flush makes written samples readable (VictoriaMetrics' force_flush).
	flush func(t testing.TB)
}

// startVM starts Debian's victoria-metrics on a free port. Its latency
// offset is 1s so that recent buckets are not replaced by older ones.
func startVM(t testing.TB) engine {
	bin := testutil.NeedBinary(t, "victoria-metrics", "apt-get install victoria-metrics")
	addr := testutil.FreeAddr(t)
	testutil.StartProcess(t, "victoria-metrics", bin, "http://"+addr+"/health",
		"-httpListenAddr", addr, "-storageDataPath", filepath.Join(t.TempDir(), "vm"), "-retentionPeriod", "100y",
		"-loggerLevel", "WARN", "-search.latencyOffset", "1s")
	base := "http://" + addr
	return engine{name: "victoria-metrics", url: base, flush: func(t testing.TB) {
		resp, err := http.Get(base + "/internal/force_flush")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}}
}

// startPrometheus starts Debian's prometheus (2.42) with its remote-write
// receiver on a free port.
func startPrometheus(t testing.TB) engine {
	bin := testutil.NeedBinary(t, "prometheus", "apt-get install prometheus")
	addr := testutil.FreeAddr(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("global: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	testutil.StartProcess(t, "prometheus", bin, "http://"+addr+"/-/ready",
		"--config.file", cfg, "--storage.tsdb.path", filepath.Join(dir, "data"), "--web.listen-address", addr,
		"--web.enable-remote-write-receiver", "--storage.tsdb.retention.time", "100y", "--log.level", "warn")
	return engine{name: "prometheus", url: "http://" + addr, flush: func(testing.TB) {}}
}

// testSample is one sample of a test series.
type testSample struct {
	ls labels.Labels
	t  int64
	v  float64
}

// remoteWrite sends samples (in time order: Prometheus refuses samples
// much older than its newest) to the engine's /api/v1/write.
func remoteWrite(t testing.TB, e engine, samples []testSample) {
	t.Helper()
	const batch = 2000
	for len(samples) > 0 {
		n := min(batch, len(samples))
		var wr prompb.WriteRequest
		for _, s := range samples[:n] {
			ts := prompb.TimeSeries{Samples: []prompb.Sample{{Timestamp: s.t, Value: s.v}}}
			s.ls.Range(func(l labels.Label) { ts.Labels = append(ts.Labels, prompb.Label{Name: l.Name, Value: l.Value}) })
			wr.Timeseries = append(wr.Timeseries, ts)
		}
		samples = samples[n:]
		raw, err := wr.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, e.url+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("remote write to %s: %s", e.name, resp.Status)
		}
	}
	e.flush(t)
}
