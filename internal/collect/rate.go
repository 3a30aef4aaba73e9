package collect

import (
	"math"
	"time"
)

// rateClock measures the time between two ticks of a rate collector on the
// monotonic clock.
type rateClock struct {
	now  func() time.Time // time.Now; tests substitute a fake clock
	last time.Time
	gen  uint64 // tick generation, for internedNames
}

// advance records a new reading and returns the seconds since the previous
// one (0 on the first tick or when the clock did not move).
func (c *rateClock) advance() float64 {
	if c.now == nil {
		c.now = time.Now
	}
	t := c.now()
	var s float64
	if !c.last.IsZero() {
		s = t.Sub(c.last).Seconds() // monotonic when both came from time.Now
	}
	c.last = t
	c.gen++
	return s
}

// perSecond is (cur-prev)/seconds rounded to an integer, and false when the
// counter went backwards (reset or 32-bit wrap) or no time passed.
func perSecond(prev, cur uint64, seconds float64) (float64, bool) {
	if cur < prev || seconds <= 0 {
		return 0, false
	}
	return math.Round(float64(cur-prev) / seconds), true
}
