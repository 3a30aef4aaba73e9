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

// HourBlockSeriesBytes is the Go heap one raw series takes while an hour
// rolled up from the minutes kept is written as one block (hourblock.go):
// its 48-byte entry, and the 8-byte ids the raw head sorts (a pointer and
// an id each in SortedPostings, then the sorted list).
const HourBlockSeriesBytes = 96

// RollupReserve returns the bytes of heap a rollup pass takes while it
// writes a batch: the rollup tiers keep no series between passes, but a
// pass holds one group's batch of up to the batch bound
// (DefaultRollupBatchSeries, plus the last machine's series), four series
// per raw series, or an hour block's entries, one per raw series. A memory
// guard counts it as in use, so series are refused before a pass would
// take the hub past its budget.
func (s *Store) RollupReserve() uint64 {
	n := s.raw.NumSeries()
	return max(min(n*rollupSeriesPerRaw, uint64(s.batchSeries))*RollupSeriesBytes, n*HourBlockSeriesBytes)
}
