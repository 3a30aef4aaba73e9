package store

// RollupSeriesBytes is the Go heap one rollup-tier head series holds
// (memSeries, its labels, head chunk, hash and postings entries), measured
// by TestHeadBytesPerSeries at a steady state (the 1m heads hold 2–3 h of
// minutes, the 1h heads up to 36 h): 8.6 KB per raw series, ~1.07 KB per
// rollup series, with isolation off. Each raw series
// becomes four such series in the 1m tier and four in the 1h tier.
const RollupSeriesBytes = 1024

// rollupSeriesPerRaw is how many rollup-tier series one raw series makes:
// min, max, sum and count in each of the 1m and 1h tiers.
const rollupSeriesPerRaw = uint64(2 * len(rollupKinds))

// RollupReserve returns the bytes of heap the rollup tiers will take for the
// raw series already admitted but not yet rolled up: each raw head series
// makes eight rollup series within minutes (1m) or an hour (1h). A memory
// guard counts it as in use, so series are refused before their rollups
// would pass the budget rather than after.
func (s *Store) RollupReserve() uint64 {
	want := s.raw.Head().NumSeries() * rollupSeriesPerRaw
	have := s.tier1m.Head().NumSeries() + s.tier1h.Head().NumSeries()
	if have >= want {
		return 0
	}
	return (want - have) * RollupSeriesBytes
}
