package collect

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strconv"
)

// cpuTimes is one cpu line of /proc/stat reduced to what a busy share needs,
// in USER_HZ ticks.
type cpuTimes struct {
	id    int    // -1 for the aggregate "cpu" line
	total uint64 // user+nice+system+idle+iowait+irq+softirq+steal (guest is inside user/nice)
	idle  uint64 // idle+iowait
}

// parseStatCPU appends the cpu lines of a /proc/stat to dst.
func parseStatCPU(b []byte, dst []cpuTimes) ([]cpuTimes, error) {
	var f [8]uint64
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		if !bytes.HasPrefix(line, []byte("cpu")) {
			if len(dst) > 0 {
				break // cpu lines come first; skip the long intr line
			}
			continue
		}
		name, rest := nextField(line)
		id := -1
		if len(name) > 3 {
			n, ok := parseUint(name[3:])
			if !ok {
				return dst, fmt.Errorf("stat cpu line %q: %w", name, errSyntax)
			}
			id = int(n)
		}
		// Kernels before 2.6.11 lack steal; count what is there (at least 4).
		clear(f[:])
		if parseUints(rest, f[:]) < 4 {
			return dst, fmt.Errorf("stat %s: %w", name, errSyntax)
		}
		t := cpuTimes{id: id, idle: f[3] + f[4]}
		for _, v := range f {
			t.total += v
		}
		dst = append(dst, t)
	}
	if len(dst) == 0 {
		return dst, fmt.Errorf("stat: no cpu lines: %w", errSyntax)
	}
	return dst, nil
}

// busyPercent is the busy share between two readings of one cpu, 0–100, and
// false when the counters went backwards (reset, hotplug) or did not move.
func busyPercent(prev, cur cpuTimes) (float64, bool) {
	if cur.total <= prev.total {
		return 0, false
	}
	dt := cur.total - prev.total
	var di uint64
	if cur.idle > prev.idle { // iowait may step backwards on some kernels
		di = cur.idle - prev.idle
	}
	if di > dt {
		di = dt
	}
	return round2(clampPercent(float64(dt-di) / float64(dt) * 100)), true
}

// CPU reports cpu_usage_percent from /proc/stat.
type CPU struct {
	stat   *procFile
	cur    []cpuTimes
	prev   []cpuTimes // indexed by id+1; total==0 means no earlier reading
	labels []string   // cached "cpu" label values, indexed by id+1
}

// NewCPU returns the cpu collector.
func NewCPU(opts Options) *CPU {
	opts = opts.withDefaults()
	return &CPU{stat: newKeptProcFile(filepath.Join(opts.ProcPath, "stat"))}
}

// Name implements Collector.
func (*CPU) Name() string { return "cpu" }

// Collect implements Collector. The first tick emits nothing: a busy share
// needs two readings.
func (c *CPU) Collect(_ context.Context, b *Batch) error {
	data, err := c.stat.read()
	if err != nil {
		return err
	}
	c.cur, err = parseStatCPU(data, c.cur[:0])
	if err != nil {
		return err
	}
	for _, t := range c.cur {
		i := t.id + 1
		for len(c.prev) <= i {
			c.prev = append(c.prev, cpuTimes{})
			if n := len(c.labels); n == 0 {
				c.labels = append(c.labels, "total")
			} else {
				c.labels = append(c.labels, strconv.Itoa(n-1))
			}
		}
		if p := c.prev[i]; p.total != 0 {
			if v, ok := busyPercent(p, t); ok {
				b.Add("cpu_usage_percent", v, "cpu", c.labels[i])
			}
		}
		c.prev[i] = t
	}
	return nil
}
