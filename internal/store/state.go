package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

const stateFile = "rollup-state.json"

// watermark is the downsampler's progress for one machine. All times are ms
// since epoch.
type watermark struct {
	maxTs  int64 // raw data is complete up to here (NoteWritten); 0 = unknown
	done1m int64 // end of the last minute rolled up into the 1m tier; 0 = none yet
	done1h int64 // end of the last hour rolled up into the 1h tier; 0 = none yet
}

// stateJSON is the on-disk form of the watermarks.
type stateJSON struct {
	Version  int                     `json:"version"`
	Machines map[string]machineState `json:"machines"`
	// Pending are staged rollup blocks whose move into their tier may not
	// be done yet (batch.go); their watermarks are not in Machines.
	Pending []pendingBlocks `json:"pending,omitempty"`
	// RawHeadSeries is the series the raw tier's head held when the state
	// was saved: the next Open sizes the head's stripes from it
	// (rawHeadStripes).
	RawHeadSeries uint64 `json:"raw_head_series,omitempty"`
}

type machineState struct {
	Done1m int64 `json:"done_1m"` // ms since epoch
	Done1h int64 `json:"done_1h"` // ms since epoch
}

func (s *Store) statePath() string { return filepath.Join(s.opts.Dir, stateFile) }

// loadState reads the watermarks; a missing file means a fresh store.
func (s *Store) loadState() error {
	b, err := os.ReadFile(s.statePath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read rollup state: %w", err)
	}
	var st stateJSON
	if err := json.Unmarshal(b, &st); err != nil {
		// The file is written atomically, so this is damage from outside.
		// Recomputing rollups is safe, so start over rather than refuse.
		s.log.Warn("rollup state unreadable; rollups will be recomputed", "path", s.statePath(), "err", err)
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for m, ms := range st.Machines {
		s.machines[m] = &watermark{done1m: ms.Done1m, done1h: ms.Done1h}
	}
	for _, p := range st.Pending {
		if p.Tier != Tier1m && p.Tier != Tier1h {
			return fmt.Errorf("read rollup state %s: pending blocks of unknown tier %q", s.statePath(), p.Tier)
		}
		s.pending = append(s.pending, p)
	}
	s.rawHeadSeries = st.RawHeadSeries
	return nil
}

// saveState writes the watermarks atomically: temp file, fsync, rename,
// fsync of the directory. Callers hold rollupMu.
func (s *Store) saveState() error {
	st := stateJSON{Version: 1, Machines: map[string]machineState{}}
	s.mu.Lock()
	for m, w := range s.machines {
		if w.done1m == 0 && w.done1h == 0 {
			continue
		}
		st.Machines[m] = machineState{Done1m: w.done1m, Done1h: w.done1h}
	}
	s.mu.Unlock()
	st.Pending = s.pending
	st.RawHeadSeries = s.rawHeadSeries
	if s.raw != nil {
		st.RawHeadSeries = s.raw.NumSeries()
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode rollup state: %w", err)
	}
	return writeFileAtomic(s.statePath(), b)
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("sync dir of %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir of %s: %w", path, err)
	}
	return nil
}
