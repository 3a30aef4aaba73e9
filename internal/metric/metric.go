// Package metric owns the sample types every other package passes around:
// a series identity (name plus labels) and its value at one instant, the
// rules that make names, labels and values valid, and the one glob and
// label matcher that alert rules, silences and edge filters select with.
package metric

import (
	"sort"
	"strings"
)

// MachineLabel is the label every stored series carries; the hub sets it from
// the agent's hello, never from the agent's own labels.
const MachineLabel = "machine"

// Label is one name/value pair of a series identity.
type Label struct {
	Name  string
	Value string
}

// Labels is a label set sorted by name with unique names.
type Labels []Label

// Get returns the value of name, or "" when absent.
func (ls Labels) Get(name string) string {
	for _, l := range ls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// Sort orders ls by name in place and returns it.
func (ls Labels) Sort() Labels {
	sort.Slice(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
	return ls
}

// Map returns the labels as a map (for JSON).
func (ls Labels) Map() map[string]string {
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.Name] = l.Value
	}
	return m
}

// FromMap builds sorted Labels from a map.
func FromMap(m map[string]string) Labels {
	ls := make(Labels, 0, len(m))
	for k, v := range m {
		ls = append(ls, Label{Name: k, Value: v})
	}
	return ls.Sort()
}

// Sample is one series' value at one collection tick. The tick's timestamp
// travels with the batch that holds the sample, not with each sample.
type Sample struct {
	Name   string
	Labels Labels // sorted by name; never includes MachineLabel
	Value  float64
}

// Key returns a string that identifies the series (name and labels); equal
// series give equal keys.
func (s *Sample) Key() string {
	return SeriesKey(s.Name, s.Labels)
}

// SeriesKey returns the identity key of a series.
func SeriesKey(name string, ls Labels) string {
	n := len(name)
	for _, l := range ls {
		n += len(l.Name) + len(l.Value) + 2
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(name)
	for _, l := range ls {
		b.WriteByte(0xff)
		b.WriteString(l.Name)
		b.WriteByte(0xfe)
		b.WriteString(l.Value)
	}
	return b.String()
}
