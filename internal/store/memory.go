package store

// RollupSeriesBytes is the Go heap one series of a transient rollup head
// holds while a batch is written (memSeries, its labels, head chunks, hash
// and postings entries, isolation off): ~1.5 KB per series for a batch of
// a whole day of minutes, measured by TestHeadBytesPerSeries.
const RollupSeriesBytes = 1536

// rollupSeriesPerRaw is how many series of one rollup batch a raw series
// makes: min, max, sum and count.
const rollupSeriesPerRaw = uint64(len(rollupKinds))

// RollupReserve returns the bytes of heap a rollup pass takes while it
// writes a batch: the rollup tiers keep no series between passes, but a
// pass holds one group's transient head of up to the batch bound
// (DefaultRollupBatchSeries, plus the last machine's series), four series
// per raw series. A memory guard counts it as in use, so series are
// refused before a pass would take the hub past its budget.
func (s *Store) RollupReserve() uint64 {
	return min(s.raw.NumSeries()*rollupSeriesPerRaw, uint64(s.batchSeries)) * RollupSeriesBytes
}
