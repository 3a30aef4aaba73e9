// Package push owns the agent's local push endpoint: scripts send values
// (e.g. a backup's last success time) to the agent over a unix socket with
// `sysmonstm push`, and the agent emits them as samples in every following
// batch until they go stale.
package push

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// Limits of the store.
const (
	// MaxPerPush bounds the metrics of one push.
	MaxPerPush = 1000
	// MaxSeries bounds the pushed series an agent holds.
	MaxSeries = 1000
)

// Metric is one pushed value: {"name","labels":{…},"value"}.
type Metric struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Value  float64           `json:"value"`
}

// Store holds the pushed values. A push with the same name and labels
// replaces the value; a value not pushed again within TTL is dropped (TTL 0
// keeps it until the agent restarts). It is safe for concurrent use.
type Store struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex // protects entries
	entries map[string]*entry
}

type entry struct {
	sample metric.Sample
	at     time.Time // when it was last pushed
}

// NewStore returns an empty store whose values expire after ttl (0 = never).
func NewStore(ttl time.Duration) *Store {
	return &Store{ttl: ttl, now: time.Now, entries: make(map[string]*entry)}
}

// Set validates every metric and, when all pass, stores them; otherwise it
// stores nothing and says which metric is wrong.
func (s *Store) Set(ms []Metric) error {
	if len(ms) == 0 {
		return errors.New("no metrics")
	}
	if len(ms) > MaxPerPush {
		return fmt.Errorf("%d metrics in one push, limit %d", len(ms), MaxPerPush)
	}
	samples := make([]metric.Sample, len(ms))
	keys := make([]string, len(ms))
	for i, m := range ms {
		ls := metric.FromMap(m.Labels)
		if err := metric.DefaultLimits.ValidateSeries(m.Name, ls); err != nil {
			return fmt.Errorf("metric %q: %w", m.Name, err)
		}
		if err := metric.ValidateValue(m.Value); err != nil {
			return fmt.Errorf("metric %q: %w", m.Name, err)
		}
		samples[i] = metric.Sample{Name: m.Name, Labels: ls, Value: m.Value}
		keys[i] = metric.SeriesKey(m.Name, ls)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	added := 0
	for i, k := range keys {
		if _, ok := s.entries[k]; !ok && !slices.Contains(keys[:i], k) {
			added++
		}
	}
	if len(s.entries)+added > MaxSeries {
		return fmt.Errorf("the agent holds %d pushed series, limit %d: %d new ones do not fit", len(s.entries), MaxSeries, added)
	}
	for i, k := range keys {
		s.entries[k] = &entry{sample: samples[i], at: now}
	}
	return nil
}

// Append appends every live pushed value to dst, dropping expired ones.
func (s *Store) Append(dst []metric.Sample) []metric.Sample {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	for _, e := range s.entries {
		dst = append(dst, e.sample)
	}
	return dst
}

// Len returns the number of pushed series held.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// expire drops values older than the TTL. Caller holds s.mu.
func (s *Store) expire(now time.Time) {
	if s.ttl <= 0 {
		return
	}
	for k, e := range s.entries {
		if now.Sub(e.at) > s.ttl {
			delete(s.entries, k)
		}
	}
}
