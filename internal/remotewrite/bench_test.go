package remotewrite

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/sysmonstm/sysmonstm/internal/store"
)

// BenchmarkCommitPath is the ingest writer's group commit with and without
// the remote-write tee: 10,000 series (100 machines × 100), one sample
// each per commit, appended with cached refs into the real store.
//
//	go test -run '^$' -bench CommitPath -count 3 ./internal/remotewrite/
func BenchmarkCommitPath(b *testing.B) {
	for _, teed := range []bool{false, true} {
		b.Run(fmt.Sprintf("tee=%v", teed), func(b *testing.B) {
			st, err := store.Open(store.Options{Dir: b.TempDir(), MinFree: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			var tee *Tee
			if teed {
				q, err := OpenQueue(QueueOptions{Dir: b.TempDir(), MaxBytes: 64 << 30})
				if err != nil {
					b.Fatal(err)
				}
				defer q.Close()
				tee = NewTee([]*Queue{q}, nil, nil)
			}
			const series = 10_000
			ls := make([]labels.Labels, series)
			refs := make([]store.SeriesRef, series)
			for i := range ls {
				ls[i] = labels.FromStrings("__name__", fmt.Sprintf("metric_%02d", i%100), "machine", fmt.Sprintf("host-%03d", i/100), "mode", "user")
			}
			ts := int64(1_700_000_000_000)
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				ts += 1000
				var app store.Appender = st.Appender(context.Background())
				if tee != nil {
					app = tee.Wrap(app)
				}
				for i := range ls {
					r, err := app.Append(refs[i], ls[i], ts, float64(i))
					if err != nil {
						b.Fatal(err)
					}
					refs[i] = r
				}
				if err := app.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*series), "ns/sample")
			// CPU time, unlike wall time, hardly moves with other work on
			// a shared machine.
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N*series), "cpu-ns/sample")
		})
	}
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
