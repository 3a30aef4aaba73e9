package agent

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sysmonstm/sysmonstm/internal/metric"
	sysmonstmv1 "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// hostSamples returns n samples shaped like a host's: per-CPU percentages
// (0.01 precision), then byte gauges and rates (integers).
func hostSamples(n int, r *rand.Rand) []metric.Sample {
	out := make([]metric.Sample, n)
	for i := range out {
		if i%2 == 0 {
			out[i] = metric.Sample{
				Name:   "cpu_usage_percent",
				Labels: metric.Labels{{Name: "cpu", Value: fmt.Sprint(i / 2)}},
				Value:  float64(r.IntN(10000)) / 100,
			}
		} else {
			out[i] = metric.Sample{
				Name:   "network_receive_bytes_per_second",
				Labels: metric.Labels{{Name: "interface", Value: fmt.Sprintf("eth%d", i/2)}},
				Value:  float64(r.IntN(1 << 24)),
			}
		}
	}
	return out
}

func newBenchAgent(tb testing.TB) *Agent {
	a, err := New(Options{Hub: "127.0.0.1:1", MachineID: "bench"}, func(context.Context) []metric.Sample { return nil })
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// wireBytes is what one batch costs on the wire: the AgentMessage, gRPC's
// 5-byte message prefix and HTTP/2's 9-byte DATA frame header.
func wireBytes(b *sysmonstmv1.Batch) int {
	return proto.Size(&sysmonstmv1.AgentMessage{Msg: &sysmonstmv1.AgentMessage_Batch{Batch: b}}) + 5 + 9
}

func TestSteadyStateWireCost(t *testing.T) {
	a := newBenchAgent(t)
	r := rand.New(rand.NewPCG(1, 2))
	a.buildBatch(hostSamples(50, r)) // first tick defines the series
	b, _ := a.buildBatch(hostSamples(50, r))
	b.Seq, b.TimestampMs = 86400, 1767225600000
	// The hub's ack comes back: HubMessage{Ack} + the same framing.
	ack := proto.Size(&sysmonstmv1.HubMessage{Msg: &sysmonstmv1.HubMessage_Ack{Ack: &sysmonstmv1.Ack{Seq: 86400}}}) + 5 + 9
	up := wireBytes(b)
	t.Logf("50 series at 1 s: %d B/s up (batch %d B), %d B/s down (ack)", up, proto.Size(b), ack)
	if up > 1000 {
		t.Errorf("steady state %d B/s for 50 series, budget 1000", up)
	}
}

func BenchmarkBatchEncode(b *testing.B) {
	for _, n := range []int{50, 1000} {
		a := newBenchAgent(b)
		r := rand.New(rand.NewPCG(1, 2))
		a.buildBatch(hostSamples(n, r))
		samples := hostSamples(n, r)
		batch, _ := a.buildBatch(samples)
		batch.Seq, batch.TimestampMs = 86400, 1767225600000
		msg := &sysmonstmv1.AgentMessage{Msg: &sysmonstmv1.AgentMessage_Batch{Batch: batch}}

		b.Run(fmt.Sprintf("series=%d/marshal", n), func(b *testing.B) {
			b.ReportAllocs()
			var size int
			for b.Loop() {
				buf, err := proto.Marshal(msg)
				if err != nil {
					b.Fatal(err)
				}
				size = len(buf)
			}
			b.ReportMetric(float64(size), "B/batch")
			b.ReportMetric(float64(size)/float64(n), "B/sample")
		})
		// The collection path per tick: samples → batch → size.
		b.Run(fmt.Sprintf("series=%d/build", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bb, _ := a.buildBatch(samples)
				_ = proto.Size(bb)
			}
		})
	}
}
