package bus

import (
	"fmt"

	"github.com/golang/snappy"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/ingest"
	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/remotewrite"
	pb "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// agentBatch is a batch shaped like a real agent's: 100 series of the
// catalogue's kinds (cpu per core, filesystem per mount, network per
// interface…), labels of realistic length.
func agentBatch(seq uint64) ingest.BusBatch {
	x := ingest.BusBatch{Machine: "web-042.prod.example.com", Instance: 0x5eed5eed5eed, Seq: seq, Ts: 1_796_000_000_000 + int64(seq)*1000}
	add := func(name string, ls ...string) {
		var l metric.Labels
		for i := 0; i+1 < len(ls); i += 2 {
			l = append(l, metric.Label{Name: ls[i], Value: ls[i+1]})
		}
		x.Series = append(x.Series, live.NewSeries(name, l.Sort()))
		x.Values = append(x.Values, float64(len(x.Values))*1.37+float64(seq%7))
	}
	for c := range 16 {
		for _, mode := range []string{"user", "system", "iowait"} {
			add("cpu_usage_percent", "cpu", fmt.Sprint(c), "mode", mode)
		}
	}
	for _, mp := range []string{"/", "/var", "/home", "/boot"} {
		for _, n := range []string{"filesystem_used_bytes", "filesystem_free_bytes", "filesystem_used_percent"} {
			add(n, "mountpoint", mp, "device", "/dev/nvme0n1p2", "fstype", "ext4")
		}
	}
	for _, ifc := range []string{"eth0", "eth1", "lo"} {
		for _, n := range []string{"network_receive_bytes_per_second", "network_transmit_bytes_per_second", "network_receive_errors_total"} {
			add(n, "interface", ifc)
		}
	}
	for len(x.Series) < 100 {
		add("memory_used_bytes", "kind", fmt.Sprint("k", len(x.Series)))
	}
	return x
}

// BenchmarkEncodeBatch: the bytes one 100-series agent batch takes on the
// stream (snappy-compressed protobuf, before JetStream's own overhead),
// encoded as Publish does.
func BenchmarkEncodeBatch(b *testing.B) {
	x := agentBatch(1)
	var raw, out []byte
	b.ReportAllocs()
	for b.Loop() {
		raw = appendBatchMessage(raw[:0], "origin-id-22-chars-xxx", &x)
		out = snappy.Encode(out[:cap(out)], raw)
	}
	b.ReportMetric(float64(len(out)), "bytes/batch")
	b.ReportMetric(float64(len(out))/100, "bytes/sample")
}

// BenchmarkEncodeBatchProto: the same through generated protobuf objects,
// for comparison.
func BenchmarkEncodeBatchProto(b *testing.B) {
	x := agentBatch(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encode(&pb.BusMessage{Origin: "origin-id-22-chars-xxx", Msg: &pb.BusMessage_Batch{Batch: batchOf(&x)}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublish: groups of 64 such batches published to an embedded
// single-node JetStream (file storage) and acknowledged.
func BenchmarkPublish(b *testing.B) {
	ns := startNATS(b)
	bus, err := New(b.Context(), Options{URLs: urlsOf(ns), Live: nil})
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	const group = 64
	var seq uint64
	start := time.Now()
	b.ReportAllocs()
	batches := make([]ingest.BusBatch, group)
	for i := range batches {
		batches[i] = agentBatch(uint64(i + 1))
	}
	for b.Loop() {
		for i := range batches {
			seq++
			batches[i].Seq, batches[i].Ts = seq, 1_796_000_000_000+int64(seq)*1000
		}
		if err := bus.Publish(b.Context(), batches); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(seq)/time.Since(start).Seconds(), "batches/s")
}

// BenchmarkFollowBatch: what every hub spends on each batch another hub
// published: decode, validate, series identities (cached), live.Update.
func BenchmarkFollowBatch(b *testing.B) {
	st, err := live.New(live.Options{OfflineAfter: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	bus := &Bus{opts: Options{Live: st, Limits: metric.DefaultLimits}, m: newMetrics(nil), origin: "me", helloFrom: map[string]string{}}
	f := newFollower(bus)
	x := agentBatch(1)
	data := snappy.Encode(nil, appendBatchMessage(nil, "other", &x))
	b.ReportAllocs()
	for b.Loop() {
		f.apply(data)
	}
}

// BenchmarkStoreBatch: what the storage consumer spends on each batch
// before the request goes out: decode, validate, and the remote-write
// encoding of its samples and its seq sample.
func BenchmarkStoreBatch(b *testing.B) {
	x := agentBatch(1)
	data := snappy.Encode(nil, appendBatchMessage(nil, "other", &x))
	var enc remotewrite.Encoder
	var r storeReader
	b.ReportAllocs()
	for b.Loop() {
		enc.Reset()
		if err := r.add(&enc, data, metric.DefaultLimits); err != nil {
			b.Fatal(err)
		}
	}
}
