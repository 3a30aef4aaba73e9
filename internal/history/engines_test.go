package history

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

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

// needBinary returns the path of an engine's binary; without it the test
// skips, except in CI (CI=true) where it fails.
func needBinary(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI (apt-get install %s): %v", name, pkg, err)
		}
		t.Skipf("%s not installed (apt-get install %s)", name, pkg)
	}
	return p
}

// freeAddr returns a loopback address with a port that was free.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// syncBuffer collects a process' output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startProcess runs bin with args until the test ends and waits until
// GET health answers 200.
func startProcess(t testing.TB, name, bin, health string, args ...string) {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", name, out.String())
		}
	})
	testutil.WaitFor(t, 60*time.Second, name+" healthy", func() error {
		select {
		case <-done:
			t.Fatalf("%s exited: %s", name, out.String())
		default:
		}
		resp, err := http.Get(health)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}

// startVM starts Debian's victoria-metrics on a free port. Its latency
// offset is 1s so that recent buckets are not replaced by older ones.
func startVM(t testing.TB) engine {
	bin := needBinary(t, "victoria-metrics", "victoria-metrics")
	addr := freeAddr(t)
	startProcess(t, "victoria-metrics", bin, "http://"+addr+"/health",
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
	bin := needBinary(t, "prometheus", "prometheus")
	addr := freeAddr(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("global: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	startProcess(t, "prometheus", bin, "http://"+addr+"/-/ready",
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
