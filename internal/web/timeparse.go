package web

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// maxUnixSeconds is 9999-12-31T23:59:59Z, the last second RFC 3339 can write.
const maxUnixSeconds = 253402300799

// maxRelative bounds relative times and steps (about 100 years).
const maxRelative = 100 * 365 * 24 * time.Hour

// parseTime reads a time parameter. Accepted forms:
//   - RFC 3339: "2026-11-22T10:00:00Z", "2026-11-22T10:00:00.5+01:00"
//   - unix seconds, integer or fractional: "1763805600", "1763805600.250"
//   - "now"
//   - a duration relative to now: "-15m", "-1h30m", "-7d", "+5m", and the
//     same after "now": "now-15m"
func parseTime(s string, now time.Time) (time.Time, error) {
	switch {
	case s == "":
		return time.Time{}, errors.New("empty time")
	case s == "now":
		return now, nil
	case s[0] == '-' || s[0] == '+':
		d, err := parseRelative(s)
		if err != nil {
			return time.Time{}, err
		}
		return now.Add(d), nil
	case strings.HasPrefix(s, "now-") || strings.HasPrefix(s, "now+"):
		d, err := parseRelative(s[3:])
		if err != nil {
			return time.Time{}, err
		}
		return now.Add(d), nil
	case isUnixSeconds(s):
		return parseUnixSeconds(s)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not RFC 3339 (2026-11-22T10:00:00Z), unix seconds, \"now\" or a relative duration like -15m", clip(s))
	}
	return t, nil
}

// isUnixSeconds reports whether s is digits with at most one '.'.
func isUnixSeconds(s string) bool {
	dot := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return s != "."
}

// parseUnixSeconds parses "SECONDS[.FRACTION]" exactly (no float rounding).
func parseUnixSeconds(s string) (time.Time, error) {
	ip, fp, _ := strings.Cut(s, ".")
	var sec int64
	if ip != "" {
		var err error
		sec, err = strconv.ParseInt(ip, 10, 64)
		if err != nil || sec > maxUnixSeconds {
			return time.Time{}, fmt.Errorf("unix time %s is out of range (seconds expected, not milliseconds)", clip(s))
		}
	}
	var nsec int64
	for i := 0; i < 9; i++ {
		nsec *= 10
		if i < len(fp) {
			nsec += int64(fp[i] - '0')
		}
	}
	return time.Unix(sec, nsec).UTC(), nil
}

// parseRelative parses a signed duration: Go syntax ("-1h30m", "+90s") or
// whole days and weeks ("-7d", "-2w").
func parseRelative(s string) (time.Duration, error) {
	d, err := parseDuration(s[1:])
	if err != nil {
		return 0, err
	}
	if s[0] == '-' {
		d = -d
	}
	return d, nil
}

// parseDuration parses an unsigned duration: Go syntax ("1h30m", "15s") or a
// number of days or weeks ("7d", "2w"), at most about 100 years.
func parseDuration(s string) (time.Duration, error) {
	if s == "" || s[0] == '-' || s[0] == '+' {
		return 0, fmt.Errorf("invalid duration %q", clip(s))
	}
	if n := len(s); s[n-1] == 'd' || s[n-1] == 'w' {
		v, err := strconv.ParseUint(s[:n-1], 10, 32)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: use e.g. 15m, 1h30m, 7d", clip(s))
		}
		unit := 24 * time.Hour
		if s[n-1] == 'w' {
			unit *= 7
		}
		if v > uint64(maxRelative/unit) {
			return 0, fmt.Errorf("duration %q is too long", clip(s))
		}
		return time.Duration(v) * unit, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: use e.g. 15m, 1h30m, 7d", clip(s))
	}
	if d > maxRelative {
		return 0, fmt.Errorf("duration %q is too long", clip(s))
	}
	return d, nil
}

// parseStep reads the step parameter: a duration ("30s", "5m", "1d") or a
// number of seconds ("30", "0.5"). Zero means "pick one".
func parseStep(s string) (time.Duration, error) {
	if isUnixSeconds(s) {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f*float64(time.Second) > float64(maxRelative) {
			return 0, fmt.Errorf("step %q is out of range", clip(s))
		}
		d := time.Duration(math.Round(f * float64(time.Second)))
		if d == 0 && f != 0 {
			return 0, fmt.Errorf("step %q is below 1ns", clip(s))
		}
		return d, nil
	}
	d, err := parseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("step: %w", err)
	}
	return d, nil
}

// clip shortens untrusted input quoted in error messages.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
