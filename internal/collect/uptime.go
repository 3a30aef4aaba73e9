package collect

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
)

// parseUptime returns the first field of /proc/uptime ("640.03 947.87"):
// seconds since boot.
func parseUptime(b []byte) (float64, error) {
	f, _ := nextField(b)
	v, err := strconv.ParseFloat(string(f), 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("uptime %q: %w", f, errSyntax)
	}
	return v, nil
}

// Uptime reports uptime_seconds from /proc/uptime.
type Uptime struct {
	file *procFile
}

// NewUptime returns the uptime collector.
func NewUptime(opts Options) *Uptime {
	opts = opts.withDefaults()
	return &Uptime{file: newKeptProcFile(filepath.Join(opts.ProcPath, "uptime"))}
}

// Name implements Collector.
func (*Uptime) Name() string { return "uptime" }

// Collect implements Collector. The value is whole seconds.
func (c *Uptime) Collect(_ context.Context, b *Batch) error {
	data, err := c.file.read()
	if err != nil {
		return err
	}
	v, err := parseUptime(data)
	if err != nil {
		return err
	}
	b.Add("uptime_seconds", math.Floor(v))
	return nil
}
