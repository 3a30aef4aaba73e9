package store

// RollupSeriesBytes is the Go heap one series of a rollup batch holds
// until the batch is written (blockwrite.go: its labels, its entry and
// where its chunks are in the spill file): 688 B per series for a batch of
// a whole day of minutes (12 chunks), ~200 B for an hour's, measured by
// TestBlockBatchBytesPerSeries, which fails above this figure.
const RollupSeriesBytes = 768

// rollupSeriesPerRaw is how many series of one rollup batch a raw series
// makes: min, max, sum and count.
const rollupSeriesPerRaw = uint64(len(rollupKinds))

// RollupReserve returns the bytes of heap a rollup pass takes while it
// writes a batch: the rollup tiers keep no series between passes, but a
// pass holds one group's batch of up to the batch bound
// (DefaultRollupBatchSeries, plus the last machine's series), four series
// per raw series. A memory guard counts it as in use, so series are
// refused before a pass would take the hub past its budget.
func (s *Store) RollupReserve() uint64 {
	return min(s.raw.NumSeries()*rollupSeriesPerRaw, uint64(s.batchSeries)) * RollupSeriesBytes
}
