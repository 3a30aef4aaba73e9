package collect

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// parseProcsStat returns procs_running and procs_blocked from /proc/stat.
func parseProcsStat(b []byte) (running, blocked uint64, err error) {
	var seen int
	for len(b) > 0 && seen < 2 {
		var line []byte
		line, b = nextLine(b)
		key, rest := nextField(line)
		var dst *uint64
		switch {
		case bytes.Equal(key, []byte("procs_running")):
			dst = &running
		case bytes.Equal(key, []byte("procs_blocked")):
			dst = &blocked
		default:
			continue
		}
		v, _ := nextField(rest)
		n, ok := parseUint(v)
		if !ok {
			return 0, 0, fmt.Errorf("stat %s: %w", key, errSyntax)
		}
		*dst = n
		seen++
	}
	if seen < 2 {
		return 0, 0, fmt.Errorf("stat: no procs_running/procs_blocked: %w", errSyntax)
	}
	return running, blocked, nil
}

// Processes reports processes_total (numeric directories in /proc) and
// processes_running, processes_blocked from /proc/stat.
type Processes struct {
	pids pidCounter
	stat *procFile
	now  func() time.Time
}

// NewProcesses returns the process count collector.
func NewProcesses(opts Options) *Processes {
	opts = opts.withDefaults()
	return &Processes{pids: pidCounter{path: opts.ProcPath}, stat: newKeptProcFile(filepath.Join(opts.ProcPath, "stat")), now: time.Now}
}

// Name implements Collector.
func (*Processes) Name() string { return "processes" }

// Collect implements Collector.
func (c *Processes) Collect(_ context.Context, b *Batch) error {
	n, err := c.pids.count(c.now())
	if err != nil {
		return err
	}
	b.Add("processes_total", float64(n))
	data, err := c.stat.read()
	if err != nil {
		return err
	}
	running, blocked, err := parseProcsStat(data)
	if err != nil {
		return err
	}
	b.Add("processes_running", float64(running))
	b.Add("processes_blocked", float64(blocked))
	return nil
}

// isPID reports whether a /proc entry name is a process id.
func isPID(name []byte) bool {
	v, ok := parseUint(name)
	return ok && v > 0 && v <= 1<<32-1
}
