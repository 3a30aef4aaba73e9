package store

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// TestBytesPerSampleDir measures bytes per raw sample on a real hub's data
// instead of a synthetic workload: it copies the raw tier of the stopped
// hub's data directory SYSMONSTM_BENCH_DIR, writes its head out as a block
// and reports the block's bytes per sample, in total and per metric family
// (chunk bytes of the family's series over their samples). It is a
// measurement, not a check.
//
//	sysmonstm up --data-dir /tmp/real &  # let it run, then stop it
//	SYSMONSTM_BENCH_DIR=/tmp/real go test -count=1 -run 'TestBytesPerSampleDir$' -v ./internal/store/
func TestBytesPerSampleDir(t *testing.T) {
	src := os.Getenv("SYSMONSTM_BENCH_DIR")
	if src == "" {
		t.Skip("set SYSMONSTM_BENCH_DIR to a stopped hub's data directory to measure its bytes per sample")
	}
	dir := filepath.Join(t.TempDir(), "raw")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(src, "tsdb", TierRaw))); err != nil {
		t.Fatal(err)
	}
	db, err := tsdb.Open(dir, nil, nil, tierOptions(100*365*24*time.Hour, DefaultOutOfOrderWindow, 0, rawSamplesPerChunk), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	head := db.Head()
	if head.NumSeries() > 0 {
		if err := db.CompactHead(tsdb.NewRangeHead(head, head.MinTime(), head.MaxTime())); err != nil {
			t.Fatal(err)
		}
	}
	type fam struct {
		series, samples int
		bytes           int
	}
	fams := map[string]*fam{}
	var samples, chunkBytes, indexBytes int64
	for _, b := range db.Blocks() {
		indexBytes += fileSize(t, filepath.Join(b.Dir(), "index"))
		chunkBytes += dirSize(t, filepath.Join(b.Dir(), "chunks"))
		q, err := tsdb.NewBlockChunkQuerier(b, math.MinInt64, math.MaxInt64)
		if err != nil {
			t.Fatal(err)
		}
		set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+"))
		for set.Next() {
			ser := set.At()
			name := ser.Labels().Get(labels.MetricName)
			f := fams[name]
			if f == nil {
				f = &fam{}
				fams[name] = f
			}
			f.series++
			it := ser.Iterator(nil)
			for it.Next() {
				m := it.At()
				f.bytes += len(m.Chunk.Bytes())
				n := m.Chunk.NumSamples()
				if m.Chunk.Encoding() != chunkenc.EncXOR {
					t.Logf("%s: chunk encoding %v", name, m.Chunk.Encoding())
				}
				f.samples += n
				samples += int64(n)
			}
			if err := it.Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := set.Err(); err != nil {
			t.Fatal(err)
		}
		q.Close()
	}
	if samples == 0 {
		t.Fatalf("%s holds no samples", src)
	}
	names := make([]string, 0, len(fams))
	for n := range fams {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return fams[names[i]].bytes > fams[names[j]].bytes })
	var sb strings.Builder
	for _, n := range names {
		f := fams[n]
		fmt.Fprintf(&sb, "\n  %-50s %5d series %9d samples %6.3f B/sample %5.1f %% of chunk bytes", n, f.series, f.samples,
			float64(f.bytes)/float64(f.samples), 100*float64(f.bytes)/float64(chunkBytes))
	}
	t.Logf("%s: %d series, %d samples; block %.3f B/sample (chunks %.3f, index %.3f); families by chunk bytes:%s",
		src, len(names), samples, float64(chunkBytes+indexBytes)/float64(samples),
		float64(chunkBytes)/float64(samples), float64(indexBytes)/float64(samples), sb.String())
}
