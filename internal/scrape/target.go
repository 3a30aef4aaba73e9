package scrape

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// Defaults and bounds of a Target.
const (
	DefaultInterval    = 15 * time.Second
	MinInterval        = time.Second
	MaxInterval        = time.Hour
	DefaultMaxTimeout  = 10 * time.Second // the default timeout is min(this, 9/10 of the interval)
	DefaultSampleLimit = 10_000
	MaxSampleLimit     = 50_000   // the agent's whole series table
	DefaultBodyLimit   = 10 << 20 // bytes, after decompression
	MaxBodyLimit       = 1 << 30  // bytes
	DefaultJob         = "scrape" // job label when the target names none
	maxJobLength       = 200      // bytes of a job name
	optionSeparator    = ";"      // between the URL and its options
	targetSeparator    = ","      // between targets in one value (environment, config file)
	minBodyLimit       = 1 << 10  // bytes
)

// Target is one exporter the agent scrapes.
type Target struct {
	URL      string        // http or https URL of the exposition, e.g. http://127.0.0.1:9100/metrics
	Job      string        // value of the job label; default DefaultJob
	Instance string        // value of the instance label: the URL's host:port (as Prometheus' __address__)
	Interval time.Duration // between scrapes, MinInterval to MaxInterval; default DefaultInterval
	// Timeout bounds one scrape (connect, headers, body); less than
	// Interval; default min(DefaultMaxTimeout, 9/10 of Interval).
	Timeout time.Duration
	// SampleLimit fails a scrape whose exposition has more samples, like
	// Prometheus' sample_limit; 1 to MaxSampleLimit, default DefaultSampleLimit.
	SampleLimit int
	// BodyLimit fails a scrape whose body (decompressed) is larger, in
	// bytes; default DefaultBodyLimit.
	BodyLimit int64
	// HonorLabels keeps the job and instance labels an exposition sets
	// itself, like Prometheus' honor_labels; otherwise (the default) they
	// are renamed exported_job and exported_instance.
	HonorLabels bool
}

// ParseTarget parses one target: URL[;key=value]… with the keys job,
// interval, timeout, sample_limit, body_limit (bytes, or with a KiB/MiB
// suffix) and honor_labels (true/false), e.g.
// "http://127.0.0.1:9100/metrics;job=node;interval=30s". The result has
// its defaults filled in and is valid.
func ParseTarget(spec string) (Target, error) {
	parts := strings.Split(strings.TrimSpace(spec), optionSeparator)
	t := Target{URL: strings.TrimSpace(parts[0])}
	seen := map[string]bool{}
	for _, opt := range parts[1:] {
		opt = strings.TrimSpace(opt)
		if opt == "" {
			continue
		}
		k, v, ok := strings.Cut(opt, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || v == "" {
			return Target{}, fmt.Errorf("scrape target %q: option %q: want key=value", spec, opt)
		}
		if seen[k] {
			return Target{}, fmt.Errorf("scrape target %q: option %s given twice", spec, k)
		}
		seen[k] = true
		if err := t.set(k, v); err != nil {
			return Target{}, fmt.Errorf("scrape target %q: %w", spec, err)
		}
	}
	t = t.withDefaults()
	if err := t.Validate(); err != nil {
		return Target{}, fmt.Errorf("scrape target %q: %w", spec, err)
	}
	return t, nil
}

// set applies one option; numbers and durations must be positive (zero
// would mean the default).
func (t *Target) set(k, v string) error {
	var (
		err      error
		positive = true
	)
	switch k {
	case "job":
		t.Job = v
	case "interval":
		t.Interval, err = time.ParseDuration(v)
		positive = t.Interval > 0
	case "timeout":
		t.Timeout, err = time.ParseDuration(v)
		positive = t.Timeout > 0
	case "sample_limit":
		t.SampleLimit, err = strconv.Atoi(v)
		positive = t.SampleLimit > 0
	case "body_limit":
		t.BodyLimit, err = parseBytes(v)
		positive = t.BodyLimit > 0
	case "honor_labels":
		t.HonorLabels, err = strconv.ParseBool(v)
	default:
		return fmt.Errorf("unknown option %q (valid: job, interval, timeout, sample_limit, body_limit, honor_labels)", k)
	}
	if err == nil && !positive {
		err = errors.New("must be positive")
	}
	if err != nil {
		return fmt.Errorf("option %s=%s: %w", k, v, err)
	}
	return nil
}

// parseBytes parses "1048576", "512KiB" or "16MiB".
func parseBytes(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errors.New("want bytes, e.g. 1048576, 512KiB or 16MiB")
	}
	if n > MaxBodyLimit/mult {
		return 0, fmt.Errorf("more than %d bytes", int64(MaxBodyLimit))
	}
	return n * mult, nil
}

// withDefaults fills the documented defaults of zero fields and derives
// Instance from URL.
func (t Target) withDefaults() Target {
	if t.Job == "" {
		t.Job = DefaultJob
	}
	if t.Interval == 0 {
		t.Interval = DefaultInterval
	}
	if t.Timeout == 0 {
		t.Timeout = min(DefaultMaxTimeout, t.Interval/10*9)
	}
	if t.SampleLimit == 0 {
		t.SampleLimit = DefaultSampleLimit
	}
	if t.BodyLimit == 0 {
		t.BodyLimit = DefaultBodyLimit
	}
	if u, err := url.Parse(t.URL); err == nil && t.Instance == "" {
		t.Instance = u.Host
	}
	return t
}

// Validate checks t as given.
func (t *Target) Validate() error {
	u, err := url.Parse(t.URL)
	if err != nil {
		return fmt.Errorf("invalid URL (want http:// or https://HOST:PORT/PATH): %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("URL must start with http:// or https://")
	}
	if u.Host == "" || u.Hostname() == "" {
		return errors.New("URL has no host")
	}
	if u.User != nil {
		return errors.New("credentials in the URL are not supported (they would show in the instance label and the logs)")
	}
	if t.Job == "" || len(t.Job) > maxJobLength || !validText(t.Job) {
		return fmt.Errorf("job %q: want 1 to %d printable characters without %q", t.Job, maxJobLength, optionSeparator)
	}
	if t.Instance == "" || len(t.Instance) > metric.DefaultLimits.MaxLabelValueLength || !validText(t.Instance) {
		return fmt.Errorf("instance %q: want the URL's host:port", t.Instance)
	}
	if t.Interval < MinInterval || t.Interval > MaxInterval || t.Interval%time.Millisecond != 0 {
		return fmt.Errorf("interval %s: must be whole milliseconds between %s and %s", t.Interval, MinInterval, MaxInterval)
	}
	if t.Timeout <= 0 || t.Timeout >= t.Interval {
		return fmt.Errorf("timeout %s: must be positive and less than the interval %s", t.Timeout, t.Interval)
	}
	if t.SampleLimit < 1 || t.SampleLimit > MaxSampleLimit {
		return fmt.Errorf("sample_limit %d: must be between 1 and %d", t.SampleLimit, MaxSampleLimit)
	}
	if t.BodyLimit < minBodyLimit || t.BodyLimit > MaxBodyLimit {
		return fmt.Errorf("body_limit %d: must be between %d and %d bytes", t.BodyLimit, minBodyLimit, int64(MaxBodyLimit))
	}
	return nil
}

// validText reports whether s is valid UTF-8 without control characters.
func validText(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return false
		}
	}
	return true
}

// SplitTargets splits one setting value into target specs. A value holds
// one target, or several separated by commas where the next one starts
// with http:// or https:// (the form the environment variable and a config
// file list take), so commas inside a URL need no escaping.
func SplitTargets(s string) []string {
	var out []string
	rest := s
	for {
		i := nextTarget(rest)
		if i < 0 {
			break
		}
		out = append(out, rest[:i])
		rest = rest[i+len(targetSeparator):]
	}
	out = append(out, rest)
	kept := out[:0]
	for _, p := range out {
		if p = strings.TrimSpace(p); p != "" {
			kept = append(kept, p)
		}
	}
	return kept
}

// nextTarget returns the index of the first comma in s followed by a URL
// scheme, or -1.
func nextTarget(s string) int {
	off := 0
	for {
		i := strings.Index(s[off:], targetSeparator)
		if i < 0 {
			return -1
		}
		after := strings.TrimLeft(s[off+i+1:], " \t")
		if strings.HasPrefix(after, "http://") || strings.HasPrefix(after, "https://") {
			return off + i
		}
		off += i + 1
	}
}

// TargetsValue is a repeatable flag.Value of scrape targets; a value with
// several comma-separated targets (SplitTargets) adds each. Convert a
// *[]Target to use it: fs.Var((*TargetsValue)(&targets), …).
type TargetsValue []Target

// String returns the targets' URLs, comma-separated.
func (v *TargetsValue) String() string {
	if v == nil {
		return ""
	}
	urls := make([]string, len(*v))
	for i, t := range *v {
		urls[i] = t.URL
	}
	return strings.Join(urls, targetSeparator)
}

// Set parses and adds the targets of s.
func (v *TargetsValue) Set(s string) error {
	specs := SplitTargets(s)
	if len(specs) == 0 {
		return errors.New("empty scrape target: want URL[;job=NAME][;interval=DURATION]…")
	}
	for _, spec := range specs {
		t, err := ParseTarget(spec)
		if err != nil {
			return err
		}
		*v = append(*v, t)
	}
	return nil
}
