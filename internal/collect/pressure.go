package collect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"strconv"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// psiLine is one line of a /proc/pressure file.
type psiLine struct {
	avg   [3]float64 // avg10, avg60, avg300: percent of wall time stalled
	total uint64     // microseconds stalled since boot
}

// parsePressure parses "some avg10=0.12 avg60=… avg300=… total=1234\nfull …".
// A missing "full" line (cpu before Linux 5.13) leaves hasFull false.
func parsePressure(b []byte) (some, full psiLine, hasFull bool, err error) {
	var hasSome bool
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		kind, rest := nextField(line)
		var dst *psiLine
		switch string(kind) {
		case "some":
			dst, hasSome = &some, true
		case "full":
			dst, hasFull = &full, true
		case "":
			continue
		default:
			return some, full, false, fmt.Errorf("pressure %q: %w", kind, errSyntax)
		}
		for i := 0; i < 4; i++ {
			var f []byte
			f, rest = nextField(rest)
			eq := bytes.IndexByte(f, '=')
			if eq < 0 {
				return some, full, false, fmt.Errorf("pressure field %q: %w", f, errSyntax)
			}
			k, v := f[:eq], f[eq+1:]
			var ok bool
			switch string(k) {
			case "avg10", "avg60", "avg300":
				idx := 0
				switch len(k) {
				case 5:
					idx = 1
				case 6:
					idx = 2
				}
				if len(k) == 5 && k[3] == '1' {
					idx = 0
				}
				var e error
				dst.avg[idx], e = strconv.ParseFloat(string(v), 64)
				ok = e == nil
			case "total":
				dst.total, ok = parseUint(v)
			}
			if !ok {
				return some, full, false, fmt.Errorf("pressure field %q: %w", f, errSyntax)
			}
		}
	}
	if !hasSome {
		return some, full, false, fmt.Errorf("pressure: no some line: %w", errSyntax)
	}
	return some, full, hasFull, nil
}

// Pressure reports pressure stall information from /proc/pressure/{cpu,
// memory,io}: pressure_{some,full}_avg{10,60,300}_percent{resource} (share
// of wall time in which some / all non-idle tasks were stalled, averaged by
// the kernel over 10 s, 60 s, 300 s) and pressure_{some,full}_seconds_total
// {resource} (cumulative stall time).
type Pressure struct {
	files  [3]*procFile
	labels [3]metric.Labels
}

var pressureResources = [3]string{"cpu", "memory", "io"}

var psiNames = [2][4]string{
	{"pressure_some_avg10_percent", "pressure_some_avg60_percent", "pressure_some_avg300_percent", "pressure_some_seconds_total"},
	{"pressure_full_avg10_percent", "pressure_full_avg60_percent", "pressure_full_avg300_percent", "pressure_full_seconds_total"},
}

// NewPressure returns the PSI collector.
func NewPressure(opts Options) *Pressure {
	opts = opts.withDefaults()
	c := &Pressure{}
	for i, r := range pressureResources {
		c.files[i] = newKeptProcFile(filepath.Join(opts.ProcPath, "pressure", r))
		c.labels[i] = metric.Labels{{Name: "resource", Value: r}}
	}
	return c
}

// Name implements Collector.
func (*Pressure) Name() string { return "pressure" }

// Collect implements Collector. A kernel without PSI (or booted with
// psi=0, where reads fail with EOPNOTSUPP) yields nothing.
func (c *Pressure) Collect(_ context.Context, b *Batch) error {
	var errs []error
	for i, f := range c.files {
		data, err := f.read()
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) && !isNotSupported(err) {
				errs = append(errs, err)
			}
			continue
		}
		some, full, hasFull, err := parsePressure(data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		res := c.labels[i]
		addPSI(b, psiNames[0], some, res)
		if hasFull {
			addPSI(b, psiNames[1], full, res)
		}
	}
	return errors.Join(errs...)
}

func addPSI(b *Batch, names [4]string, l psiLine, res metric.Labels) {
	for i := range l.avg {
		b.addShared(names[i], l.avg[i], res)
	}
	b.addShared(names[3], math.Round(float64(l.total)/1e3)/1e3, res)
}
