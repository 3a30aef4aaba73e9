package web

import (
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	ref := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		err  bool
	}{
		{in: "2026-11-22T10:00:00Z", want: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)},
		{in: "2026-11-22T10:00:00.250+01:00", want: time.Date(2026, 11, 22, 9, 0, 0, 250e6, time.UTC)},
		{in: "1763805600", want: time.Unix(1763805600, 0)},
		{in: "1763805600.5", want: time.Unix(1763805600, 500e6)},
		{in: "1763805600.123456789123", want: time.Unix(1763805600, 123456789)},
		{in: "1763805600.", want: time.Unix(1763805600, 0)},
		{in: ".5", want: time.Unix(0, 500e6)},
		{in: "0", want: time.Unix(0, 0)},
		{in: "253402300799", want: time.Unix(253402300799, 0)},
		{in: "now", want: ref},
		{in: "-15m", want: ref.Add(-15 * time.Minute)},
		{in: "-1h30m", want: ref.Add(-90 * time.Minute)},
		{in: "+5m", want: ref.Add(5 * time.Minute)},
		{in: "-7d", want: ref.AddDate(0, 0, -7)},
		{in: "-2w", want: ref.AddDate(0, 0, -14)},
		{in: "now-1h", want: ref.Add(-time.Hour)},
		{in: "now+30s", want: ref.Add(30 * time.Second)},
		{in: "", err: true},
		{in: "yesterday", err: true},
		{in: "1763805600000", err: true}, // milliseconds
		{in: "99999999999999999999", err: true},
		{in: "-1763805600", err: true}, // not a duration, not a time
		{in: "1.2.3", err: true},
		{in: ".", err: true},
		{in: "NaN", err: true},
		{in: "Inf", err: true},
		{in: "0x10", err: true},
		{in: "1e9", err: true},
		{in: "-", err: true},
		{in: "--5m", err: true},
		{in: "-99999999h", err: true},
		{in: "-999999999d", err: true},
		{in: "now-", err: true},
		{in: "2026-11-22", err: true},
		{in: "2026-11-22 10:00:00", err: true},
		{in: " 1763805600", err: true},
	}
	for _, tt := range tests {
		got, err := parseTime(tt.in, ref)
		if tt.err {
			if err == nil {
				t.Errorf("parseTime(%q) = %v, want error", tt.in, got)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseStep(t *testing.T) {
	f := func(in string, want time.Duration, wantErr bool) {
		t.Helper()
		got, err := parseStep(in)
		if wantErr {
			if err == nil {
				t.Errorf("parseStep(%q) = %v, want error", in, got)
			}
			return
		}
		if err != nil || got != want {
			t.Errorf("parseStep(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	f("30s", 30*time.Second, false)
	f("5m", 5*time.Minute, false)
	f("1h", time.Hour, false)
	f("1d", 24*time.Hour, false)
	f("15", 15*time.Second, false)
	f("0.5", 500*time.Millisecond, false)
	f("0", 0, false)
	f("-5s", 0, true)
	f("-15", 0, true)
	f("abc", 0, true)
	f("1e3", 0, true)
	f("99999999999999", 0, true)
	f("0.0000000001", 0, true)
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2026-11-22T10:00:00Z", "1763805600", "1763805600.5", "now", "-15m", "now-7d", "+1w", "30s", "0.5", "", "-", "9999999999999"} {
		f.Add(s)
	}
	ref := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseTime(s, ref)
		switch {
		case err == nil && (got.Year() < 1 || got.Year() > 10000):
			t.Fatalf("parseTime(%q) = %v: out of range", s, got)
		case err != nil && len(err.Error()) > 400:
			t.Fatalf("error echoes too much input: %d bytes", len(err.Error()))
		}
		if d, err := parseStep(s); err == nil && (d < 0 || d > maxRelative) {
			t.Fatalf("parseStep(%q) = %v", s, d)
		}
	})
}
