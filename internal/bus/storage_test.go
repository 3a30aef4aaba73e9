package bus

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/ingest"
	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// wantSamples is what VictoriaMetrics must hold for batches 1…n of
// machine m (instance 5, 3 series, batch seq at ts0+seq s): every sample
// exactly once, and sysmonstm_agent_seq once per batch.
func checkVM(t *testing.T, addr, machine string, n int, ts0 int64) {
	t.Helper()
	testutil.WaitFor(t, 30*time.Second, "VictoriaMetrics holds every sample once", func() error {
		got := vmExport(t, addr, fmt.Sprintf(`{machine=%q}`, machine))
		for core := range 3 {
			key := fmt.Sprintf("__name__=cpu_usage_percent,core=%d,machine=%s", core, machine)
			if len(got[key]) != n {
				return fmt.Errorf("%s: %d samples, want %d: %v", key, len(got[key]), n, got[key])
			}
			for i, s := range got[key] {
				seq := i + 1
				if want := fmt.Sprintf("%d=%d", ts0+int64(seq)*1000, seq+core); s != want {
					return fmt.Errorf("%s sample %d = %s, want %s", key, i, s, want)
				}
			}
		}
		seqKey := fmt.Sprintf("__name__=sysmonstm_agent_seq,instance=5,machine=%s", machine)
		if len(got[seqKey]) != n {
			return fmt.Errorf("%s: %d samples, want %d", seqKey, len(got[seqKey]), n)
		}
		return nil
	})
}

// The storage consumer writes every batch to a real VictoriaMetrics by
// remote write, exactly as published, and acknowledges it there.
func TestStorageConsumerWritesVictoriaMetrics(t *testing.T) {
	vm := startVM(t)
	ns := startNATS(t)
	pub := newBus(t, Options{URLs: urlsOf(ns)}) // a hub without targets stores nothing itself
	st := newBus(t, Options{URLs: urlsOf(ns), Targets: vmTarget(vm)})
	ts0 := time.Now().Add(-time.Hour).UnixMilli()
	const n = 50
	for seq := uint64(1); seq <= n; seq += 10 {
		var group []ingest.BusBatch
		for s := seq; s < seq+10; s++ {
			group = append(group, batch("web 1.*", 5, s, ts0+int64(s)*1000, 3))
		}
		if err := pub.Publish(t.Context(), group); err != nil {
			t.Fatal(err)
		}
	}
	checkVM(t, vm, "web 1.*", n, ts0)
	drained := func() bool {
		c, err := st.js.Consumer(t.Context(), SamplesStream, storageConsumer)
		if err != nil {
			return false
		}
		info, err := c.Info(t.Context())
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	}
	testutil.Until(t, 30*time.Second, "consumer acknowledged everything", drained)

	// An operator deletes the consumer: the hub creates it again and goes
	// on (from the stream's start: the TSDB de-duplicates what it had).
	if err := st.js.DeleteConsumer(t.Context(), SamplesStream, storageConsumer); err != nil {
		t.Fatal(err)
	}
	var group []ingest.BusBatch
	for s := uint64(n + 1); s <= n+10; s++ {
		group = append(group, batch("web 1.*", 5, s, ts0+int64(s)*1000, 3))
	}
	if err := pub.Publish(t.Context(), group); err != nil {
		t.Fatal(err)
	}
	checkVM(t, vm, "web 1.*", n+10, ts0)
	testutil.Until(t, 30*time.Second, "the new consumer acknowledged everything", drained)
}

// A hub that dies after the TSDB took a request but before it acknowledged
// the batches: JetStream gives them to another hub after AckWait, which
// writes them again, and the TSDB (de-duplicating identical samples) holds
// each once. A TSDB answering 503 meanwhile is retried.
func TestRedeliveredAfterHubDeathStoredOnce(t *testing.T) {
	vm := startVM(t)
	ns := startNATS(t)
	target, _ := url.Parse("http://" + vm)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var dying atomic.Pointer[Bus]
	var posts, failing atomic.Int32
	failing.Store(2)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Add(-1) >= 0 {
			http.Error(w, "not now", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
		if posts.Add(1) == 1 {
			dying.Load().Close() // the hub dies between the TSDB's 2xx and its acks
		}
	})}
	ln := listen(t)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	pub := newBus(t, Options{URLs: urlsOf(ns)})
	ts0 := time.Now().Add(-time.Hour).UnixMilli()
	const n = 20
	var group []ingest.BusBatch
	for s := uint64(1); s <= n; s++ {
		group = append(group, batch("m1", 5, s, ts0+int64(s)*1000, 3))
	}
	if err := pub.Publish(t.Context(), group); err != nil {
		t.Fatal(err)
	}
	proxied := []string{"http://" + ln.Addr().String() + "/api/v1/write"}
	dying.Store(newBus(t, Options{URLs: urlsOf(ns), Targets: targets(proxied), AckWait: 2 * time.Second}))
	testutil.Until(t, 20*time.Second, "the first hub wrote and died", func() bool { return posts.Load() >= 1 })
	survivor := newBus(t, Options{URLs: urlsOf(ns), Targets: vmTarget(vm), AckWait: 2 * time.Second})
	checkVM(t, vm, "m1", n, ts0)
	testutil.Until(t, 20*time.Second, "the survivor got the batches again", func() bool {
		return counterValue(survivor.m.redelivered) >= n
	})
	// The raw copies were two; VictoriaMetrics shows one (checkVM).
}
