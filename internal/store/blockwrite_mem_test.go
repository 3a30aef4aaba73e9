package store

import (
	"runtime"
	"strconv"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// The Go heap a block batch keeps per series stays within
// RollupSeriesBytes, the figure RollupReserve counts, for the largest
// batch a pass writes per series: a whole day of minutes (1,440 samples
// into the 1m tier) of the catalogue's labels with a __rollup__ label.
func TestBlockBatchBytesPerSeries(t *testing.T) {
	s, _ := openTest(t, "", base, nil)
	b, err := s.newBatch(2 * hourMs)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	const n = 20_000
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	h0 := heap()
	var lb labels.Builder
	refs := make([]storage.SeriesRef, 4)
	for i := range n / 4 {
		lb.Reset(series("disk_read_bytes_per_second", "machine-"+strconv.Itoa(i%200), "device", "nvme0n"+strconv.Itoa(i)))
		lsets := make([]labels.Labels, 4)
		for k, kind := range rollupKinds {
			lb.Set(rollupLabel, kind)
			lsets[k] = lb.Labels()
			refs[k] = 0
		}
		for m := range 1440 {
			for k := range lsets {
				r, err := b.Append(refs[k], lsets[k], ms(base)+int64(m)*minuteMs, float64(m*k))
				if err != nil {
					t.Fatal(err)
				}
				refs[k] = r
			}
		}
		if i%100 == 99 {
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	per := (heap() - h0) / n
	t.Logf("%d B of heap per series of a day's minutes (RollupSeriesBytes %d)", per, RollupSeriesBytes)
	if per > RollupSeriesBytes {
		t.Errorf("a batch keeps %d B per series, over RollupSeriesBytes (%d)", per, RollupSeriesBytes)
	}
	runtime.KeepAlive(b)
}
