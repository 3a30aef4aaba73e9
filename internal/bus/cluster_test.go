package bus

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sysmonstm/sysmonstm/internal/ingest"
	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// A 3-node JetStream cluster with replicas 3: one node (the samples
// stream's leader) is shut down while a hub publishes; the hub retries a
// group whose publish failed, as its agents would resend it, and afterwards
// the stream holds every batch exactly once.
func TestClusterNodeKilledLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	nodes := startCluster(t)
	b := newBus(t, Options{URLs: urlsOf(nodes...), Replicas: 3})
	ctx := t.Context()
	const groups, per = 60, 10
	ts0 := time.Now().UnixMilli()
	killed := false
	for g := range groups {
		var group []ingest.BusBatch
		for i := range per {
			seq := uint64(g*per + i + 1)
			group = append(group, batch("m", 1, seq, ts0+int64(seq), 2))
		}
		for attempt := 0; ; attempt++ {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := b.Publish(pctx, group)
			cancel()
			if err == nil {
				break
			}
			if attempt > 30 {
				t.Fatalf("group %d never acknowledged: %v", g, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if g == groups/3 && !killed {
			killed = true
			info, err := b.samples.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range nodes {
				if n.Name() == info.Cluster.Leader {
					t.Logf("shutting down the stream leader %s", n.Name())
					n.Shutdown()
				}
			}
		}
	}
	var cons jetstream.Consumer
	testutil.WaitFor(t, 30*time.Second, "a consumer on the surviving nodes", func() (err error) {
		cons, err = b.js.OrderedConsumer(ctx, SamplesStream, jetstream.OrderedConsumerConfig{})
		return err
	})
	seen := map[uint64]int{}
	deadline := time.Now().Add(30 * time.Second)
	for len(seen) < groups*per {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			if time.Now().After(deadline) {
				t.Fatalf("after %d batches: %v", len(seen), err)
			}
			continue // the cluster is still electing; the ordered consumer resumes
		}
		m, err := decode(msg.Data(), b.opts.Limits)
		if err != nil {
			t.Fatal(err)
		}
		seen[m.GetBatch().GetSeq()]++
	}
	info, err := b.samples.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Cluster.Leader == "" {
		t.Fatal("no stream leader after the failover")
	}
	if info.State.Msgs != groups*per {
		t.Fatalf("stream holds %d batches, want %d", info.State.Msgs, groups*per)
	}
	for seq := uint64(1); seq <= groups*per; seq++ {
		if seen[seq] != 1 {
			t.Fatalf("seq %d stored %d times", seq, seen[seq])
		}
	}
}

// A hub started with its NATS cluster, before the cluster can hold a
// 3-replica stream (one node of three up): it keeps trying to set up its
// streams, and is running once the other nodes join, instead of exiting
// after its first attempt.
func TestHubStartedBeforeItsClusterWaitsForIt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	opts := clusterOptions(t)
	first := startNode(t, opts[0])
	type result struct {
		b   *Bus
		err error
	}
	done := make(chan result, 1)
	began := time.Now()
	go func() {
		b, err := New(t.Context(), Options{URLs: []string{first.ClientURL()}, Replicas: 3, Live: newLive(t)})
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("New returned with one node of three: %v", r.err)
	case <-time.After(3 * time.Second):
	}
	startNode(t, opts[1])
	startNode(t, opts[2])
	r := <-done
	if r.err != nil {
		t.Fatalf("after %s: %v", time.Since(began).Round(time.Millisecond), r.err)
	}
	defer r.b.Close()
	t.Logf("streams set up %s after the start, the cluster complete after 3 s", time.Since(began).Round(time.Millisecond))
	info, err := r.b.samples.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 {
		t.Fatalf("samples stream has %d replicas, want 3", info.Config.Replicas)
	}
}
