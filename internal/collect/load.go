package collect

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
)

// parseLoadavg parses the three load averages of /proc/loadavg
// ("0.21 0.37 0.40 1/143 12093").
func parseLoadavg(b []byte) (l [3]float64, err error) {
	for i := range l {
		var f []byte
		f, b = nextField(b)
		// strconv.ParseFloat on a []byte-to-string conversion does not allocate.
		if l[i], err = strconv.ParseFloat(string(f), 64); err != nil {
			return l, fmt.Errorf("loadavg field %d %q: %w", i+1, f, errSyntax)
		}
	}
	return l, nil
}

// Load reports load1, load5 and load15 from /proc/loadavg.
type Load struct {
	file *procFile
}

// NewLoad returns the load average collector.
func NewLoad(opts Options) *Load {
	opts = opts.withDefaults()
	return &Load{file: newKeptProcFile(filepath.Join(opts.ProcPath, "loadavg"))}
}

// Name implements Collector.
func (*Load) Name() string { return "load" }

// Collect implements Collector.
func (c *Load) Collect(_ context.Context, b *Batch) error {
	data, err := c.file.read()
	if err != nil {
		return err
	}
	l, err := parseLoadavg(data)
	if err != nil {
		return err
	}
	b.Add("load1", l[0])
	b.Add("load5", l[1])
	b.Add("load15", l[2])
	return nil
}
