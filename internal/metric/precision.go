package metric

import (
	"math"
	"strconv"
	"strings"
)

// Precision of the agent's own metric families (the catalogue): the decimal
// places their values carry as collected (docs/metrics.md, "Precision"). An
// average of such values (a history bucket, a rollup, an export) is rounded
// to the same places, so averaging never shows float noise such as
// 9.548499999999995 and never claims more precision than was measured.
const (
	famPercent = 2 // percentages, rounded to 2 decimals at collection
	famBytes   = 0 // byte gauges and byte rates, whole bytes
	famEnergy  = 0 // battery energy and charge, whole joules and coulombs
	famCelsius = 3 // temperatures, millidegree sources
	famSeconds = 3 // durations and times, millisecond precision
	famOther   = 2 // load (2 decimals in /proc/loadavg), power (rounded to 2 at collection), counts, states and flags
)

// decimalsOf is the precision of a catalogue family, from its name's unit.
func decimalsOf(name string) int {
	base := strings.TrimSuffix(name, "_total")
	switch {
	case strings.HasSuffix(base, "_percent"):
		return famPercent
	case strings.Contains(base, "_bytes"):
		return famBytes
	case strings.HasSuffix(base, "_joules"), strings.HasSuffix(base, "_coulombs"):
		return famEnergy
	case strings.HasSuffix(base, "_celsius"):
		return famCelsius
	case strings.HasSuffix(base, "_seconds"):
		return famSeconds
	}
	return famOther
}

// AverageDigits is how many significant digits an average of a metric the
// agent does not define keeps (custom, pushed, remote-written): enough for
// every real digit of a gauge averaged over an hour, few enough to drop the
// float noise of sum/count.
const AverageDigits = 12

// Decimals returns the decimal places of a metric the agent defines, and
// false for every other name.
func Decimals(name string) (int, bool) {
	f, ok := catalogueByName[name]
	return f.Decimals, ok
}

// RoundAverage rounds an average of name's values: to the decimal places of
// the metric's family when the agent defines it, else to AverageDigits
// significant digits. NaN and ±Inf are returned unchanged.
func RoundAverage(name string, v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	if d, ok := Decimals(name); ok {
		p := math.Pow10(d)
		if math.Abs(v)*p >= 1<<52 {
			return v // no fraction left at this precision
		}
		// Drop sum/count's binary noise first, so that a decimal half
		// (1.0275 stored as 1.02749999…) rounds away from zero.
		return math.Round(RoundDigits(v, 15)*p) / p
	}
	return RoundDigits(v, AverageDigits)
}

// RoundDigits rounds v to n significant digits (NaN and ±Inf unchanged).
func RoundDigits(v float64, n int) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	r, err := strconv.ParseFloat(strconv.FormatFloat(v, 'g', n, 64), 64)
	if err != nil {
		return v
	}
	return r
}
