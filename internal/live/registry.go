package live

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// registryFile is the persisted machine registry: identity and last_seen of
// every machine, never its values.
type registryFile struct {
	Version  int             `json:"version"`
	Machines []registryEntry `json:"machines"`
}

type registryEntry struct {
	Info     MachineInfo `json:"info"`
	LastSeen time.Time   `json:"last_seen"`
}

const registryVersion = 1

// load reads the registry; a missing file is an empty registry. A file that
// is not valid JSON is moved aside (PATH.corrupt) with a warning, so a
// damaged cache never keeps the hub from starting.
func (s *State) load() error {
	path := s.opts.StatePath
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read machine registry %s: %w", path, err)
	}
	var rf registryFile
	if err := json.Unmarshal(b, &rf); err != nil || rf.Version != registryVersion {
		if err == nil {
			err = fmt.Errorf("unknown version %d", rf.Version)
		}
		s.log.Warn("machine registry unreadable, starting empty", "path", path, "err", err, "moved_to", path+".corrupt")
		if rerr := os.Rename(path, path+".corrupt"); rerr != nil {
			return fmt.Errorf("move unreadable machine registry %s aside: %w", path, rerr)
		}
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range rf.Machines {
		if e.Info.ID == "" {
			continue
		}
		m := newMachine(e.Info.ID)
		m.info = e.Info
		m.lastSeen = e.LastSeen
		s.machines[m.id] = m
	}
	return nil
}

// persist writes the registry atomically (temporary file, fsync, rename).
func (s *State) persist() error {
	if s.opts.StatePath == "" {
		return nil
	}
	s.persistMu.Lock()
	defer s.persistMu.Unlock()
	s.dirty.Store(false)
	ms := s.list()
	rf := registryFile{Version: registryVersion, Machines: make([]registryEntry, 0, len(ms))}
	for _, m := range ms {
		m.mu.Lock()
		rf.Machines = append(rf.Machines, registryEntry{Info: m.info, LastSeen: m.lastSeen.UTC()})
		m.mu.Unlock()
	}
	b, err := json.MarshalIndent(rf, "", "  ")
	if err != nil {
		s.dirty.Store(true)
		return fmt.Errorf("encode machine registry: %w", err)
	}
	if err := writeFileAtomic(s.opts.StatePath, b); err != nil {
		s.dirty.Store(true)
		return err
	}
	return nil
}

// writeFileAtomic replaces path with b so that a crash leaves either the old
// or the new file, never a torn one.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write machine registry %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write machine registry %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename durable; best effort
		_ = d.Close()
	}
	return nil
}
