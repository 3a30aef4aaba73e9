package collect

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
)

// meminfo holds the /proc/meminfo fields the memory collector needs, in
// bytes.
type meminfo struct {
	total, free, available, buffers, cached uint64
	swapTotal, swapFree                     uint64
	hasAvailable                            bool
}

// parseMeminfo parses /proc/meminfo ("MemTotal:       24684092 kB").
func parseMeminfo(b []byte) (meminfo, error) {
	var m meminfo
	var seenTotal bool
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			continue
		}
		var dst *uint64
		switch string(line[:colon]) { // no allocation: compiled as a comparison
		case "MemTotal":
			dst, seenTotal = &m.total, true
		case "MemFree":
			dst = &m.free
		case "MemAvailable":
			dst, m.hasAvailable = &m.available, true
		case "Buffers":
			dst = &m.buffers
		case "Cached":
			dst = &m.cached
		case "SwapTotal":
			dst = &m.swapTotal
		case "SwapFree":
			dst = &m.swapFree
		default:
			continue
		}
		num, rest := nextField(line[colon+1:])
		v, ok := parseUint(num)
		if !ok {
			return m, fmt.Errorf("meminfo %s: %w", line[:colon], errSyntax)
		}
		if unit, _ := nextField(rest); string(unit) == "kB" {
			v *= 1024
		}
		*dst = v
	}
	if !seenTotal {
		return m, fmt.Errorf("meminfo: no MemTotal: %w", errSyntax)
	}
	if !m.hasAvailable {
		// Kernels before 3.14 have no MemAvailable; approximate it the
		// way procps did.
		m.available = min(m.free+m.buffers+m.cached, m.total)
	}
	return m, nil
}

// Memory reports memory_* and swap_* from /proc/meminfo.
type Memory struct {
	file *procFile
}

// NewMemory returns the memory and swap collector.
func NewMemory(opts Options) *Memory {
	opts = opts.withDefaults()
	return &Memory{file: newKeptProcFile(filepath.Join(opts.ProcPath, "meminfo"))}
}

// Name implements Collector.
func (*Memory) Name() string { return "memory" }

// Collect implements Collector. Used memory is MemTotal - MemAvailable, the
// "used" of procps free(1) since 4.0: what could not be reclaimed without
// swapping, so page cache does not count as used.
func (c *Memory) Collect(_ context.Context, b *Batch) error {
	data, err := c.file.read()
	if err != nil {
		return err
	}
	m, err := parseMeminfo(data)
	if err != nil {
		return err
	}
	used := m.total - min(m.available, m.total)
	b.Add("memory_total_bytes", float64(m.total))
	b.Add("memory_used_bytes", float64(used))
	b.Add("memory_available_bytes", float64(m.available))
	pct := 0.0
	if m.total > 0 {
		pct = round2(float64(used) / float64(m.total) * 100)
	}
	b.Add("memory_usage_percent", pct)
	b.Add("swap_total_bytes", float64(m.swapTotal))
	b.Add("swap_used_bytes", float64(m.swapTotal-min(m.swapFree, m.swapTotal)))
	return nil
}
