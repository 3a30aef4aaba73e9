package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/prometheus/prompb"

	"github.com/sysmonstm/sysmonstm/internal/bus/bustest"
	"github.com/sysmonstm/sysmonstm/internal/db/dbtest"
	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// TestNATSPushedSamples: two hubs on one NATS JetStream and one
// VictoriaMetrics. Samples posted to hub A's HTTP ingest and remote-write
// receiver are answered 2xx once JetStream holds them, show live on hub B
// (as machines of source "http" and "remote_write"), and are stored in
// VictoriaMetrics once each, remote-written series with their labels
// exactly as sent, HTTP series
// with the machine label, neither with sysmonstm_agent_seq. With NATS
// down, both answer 503 with Retry-After.
func TestNATSPushedSamples(t *testing.T) {
	t.Parallel()
	vm := freeAddr(t)
	startVM(t, needVictoriaMetrics(t), vm, t.TempDir(), "-dedup.minScrapeInterval=1ms")
	setEnv(t, "SYSMONSTM_POSTGRES", dbtest.NewPostgres(t))
	ns := bustest.Run(t, &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	setEnv(t, "SYSMONSTM_NATS", ns.ClientURL())
	dirA, dirB := t.TempDir(), t.TempDir()
	prepareHubToken(t, []string{"--data-dir", dirA})
	rw := []string{"--remote-write", "http://" + vm + "/api/v1/write"}
	a, b := startHub(t, dirA, "", "", rw...), startHub(t, dirB, "", "", rw...)

	now := time.Now().UnixMilli()
	resp, err := a.postIngest(fmt.Appendf(nil, `{"machine":"pushed.one","metrics":[
		{"name":"temp_celsius","labels":{"room":"a"},"value":21.5,"ts":%d},
		{"name":"temp_celsius","labels":{"room":"b"},"value":19,"ts":%d}]}`, now, now-1000))
	if err != nil {
		t.Fatal(err)
	}
	var ir struct{ Accepted, Rejected int }
	_ = json.NewDecoder(resp.Body).Decode(&ir)
	resp.Body.Close()
	if resp.StatusCode != 200 || ir.Accepted != 2 || ir.Rejected != 0 {
		t.Fatalf("ingest: %d %+v", resp.StatusCode, ir)
	}
	if code := postRW(t, a, rwBody(t, now)); code != http.StatusNoContent {
		t.Fatalf("remote write: %d", code)
	}

	shows := func(id, source, name string, want float64, labels ...string) error {
		var m machine
		if code := getJSON(t, "http://"+b.http+"/api/machines/"+url.PathEscape(id), &m); code != 200 {
			return fmt.Errorf("%s: status %d", id, code)
		}
		if m.Info["source"] != source {
			return fmt.Errorf("%s: source %v, want %s", id, m.Info["source"], source)
		}
		if v, ok := m.value(name, labels...); !ok || v != want {
			return fmt.Errorf("%s: %s%v = %v (%v), want %v", id, name, labels, v, ok, want)
		}
		return nil
	}
	testutil.WaitFor(t, 20*time.Second, "hub B shows the pushed machines", func() error {
		return errors.Join(shows("pushed.one", "http", "temp_celsius", 21.5, "room", "a"),
			shows("pushed.one", "http", "temp_celsius", 19, "room", "b"),
			shows("rw.host", "remote_write", "rw_temp", 7, "job", "node", "machine", "kept"))
	})

	want := map[string][]string{
		"__name__=temp_celsius,machine=pushed.one,room=a":         {fmt.Sprintf("%d=21.5", now)},
		"__name__=temp_celsius,machine=pushed.one,room=b":         {fmt.Sprintf("%d=19", now-1000)},
		"__name__=rw_temp,instance=rw.host,job=node,machine=kept": {fmt.Sprintf("%d=6", now-1000), fmt.Sprintf("%d=7", now)},
	}
	testutil.WaitFor(t, 30*time.Second, "VictoriaMetrics holds each pushed sample once, labels as sent", func() error {
		got := testutil.VMSamples(t, vm, `{__name__=~"temp_celsius|rw_temp|sysmonstm_agent_seq"}`)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("got %v\nwant %v", got, want)
		}
		return nil
	})

	// A request of more samples of one timestamp than one bus message
	// holds (2,000): published in several, every sample stored.
	var bulk strings.Builder
	bulk.WriteString(`{"machine":"bulk.one","metrics":[`)
	const nBulk = 4500
	for i := range nBulk {
		if i > 0 {
			bulk.WriteByte(',')
		}
		fmt.Fprintf(&bulk, `{"name":"bulk_value","labels":{"i":"%d"},"value":%d,"ts":%d}`, i, i, now)
	}
	bulk.WriteString(`]}`)
	resp, err = a.postIngest([]byte(bulk.String()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("bulk ingest: %d", resp.StatusCode)
	}
	testutil.WaitFor(t, 30*time.Second, "VictoriaMetrics holds every bulk sample", func() error {
		if got := testutil.VMSamples(t, vm, `bulk_value`); len(got) != nBulk {
			return fmt.Errorf("%d series, want %d", len(got), nBulk)
		}
		return nil
	})
	testutil.WaitFor(t, 20*time.Second, "hub B shows the bulk machine", func() error {
		return shows("bulk.one", "http", "bulk_value", nBulk-1, "i", fmt.Sprint(nBulk-1))
	})

	// Hub A kept none of them in its embedded store (PromQL reads it
	// without --history-url): the TSDB has their history.
	var q struct {
		Data struct {
			Result []any `json:"result"`
		} `json:"data"`
	}
	qs := url.Values{"query": {`{__name__=~"temp_celsius|rw_temp"}`}, "time": {fmt.Sprint(now / 1000)}}
	if code := getJSON(t, "http://"+a.http+"/api/v1/query?"+qs.Encode(), &q); code != 200 || len(q.Data.Result) != 0 {
		t.Errorf("hub A's embedded store: status %d, %d series, want none", code, len(q.Data.Result))
	}

	// NATS down: neither request is acknowledged; the sender retries.
	ns.Shutdown()
	ns.WaitForShutdown()
	resp, err = a.postIngest([]byte(`{"machine":"pushed.one","metrics":[{"name":"temp_celsius","value":1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("ingest with NATS down: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if code := postRW(t, a, rwBody(t, time.Now().UnixMilli())); code != http.StatusServiceUnavailable {
		t.Fatalf("remote write with NATS down: %d", code)
	}
}

// rwBody is a remote-write request: a series of machine rw.host (label
// instance) that also carries a machine label, with two samples.
func rwBody(t *testing.T, now int64) []byte {
	t.Helper()
	raw, err := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: []prompb.Label{{Name: "__name__", Value: "rw_temp"}, {Name: "instance", Value: "rw.host"}, {Name: "job", Value: "node"}, {Name: "machine", Value: "kept"}},
			Samples: []prompb.Sample{{Value: 6, Timestamp: now - 1000}, {Value: 7, Timestamp: now}}},
	}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

// postRW posts a remote-write body to the hub with its agent token and
// returns the status; the Retry-After of a 503 must be set.
func postRW(t *testing.T, h *hubProc, body []byte) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+h.http+"/api/v1/write", bytes.NewReader(body))
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
		t.Errorf("remote write 503 without Retry-After")
	}
	return resp.StatusCode
}
