package config

import (
	"fmt"
	"net"
	"strings"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// LabelsValue is a flag.Value for "k=v,k2=v2" label lists.
type LabelsValue struct{ Labels metric.Labels }

func (l *LabelsValue) String() string {
	if l == nil {
		return ""
	}
	parts := make([]string, len(l.Labels))
	for i, lb := range l.Labels {
		parts[i] = lb.Name + "=" + lb.Value
	}
	return strings.Join(parts, ",")
}

// Set parses "k=v,k2=v2"; names are validated like metric label names.
func (l *LabelsValue) Set(s string) error {
	ls, err := ParseLabels(s)
	if err != nil {
		return err
	}
	l.Labels = ls
	return nil
}

// ParseLabels parses "k=v,k2=v2" into sorted, validated labels.
func ParseLabels(s string) (metric.Labels, error) {
	var ls metric.Labels
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("label %q: want name=value", part)
		}
		k = strings.TrimSpace(k)
		if !metric.ValidLabelName(k) || k == metric.MachineLabel {
			return nil, fmt.Errorf("label name %q: must match [a-zA-Z_][a-zA-Z0-9_]* and not be %q", k, metric.MachineLabel)
		}
		if seen[k] {
			return nil, fmt.Errorf("label %q given twice", k)
		}
		seen[k] = true
		ls = append(ls, metric.Label{Name: k, Value: strings.TrimSpace(v)})
	}
	return ls.Sort(), metric.DefaultLimits.ValidateSeries("labels", ls)
}

// IsLoopback reports whether a listen or dial address HOST:PORT names only
// this machine: a loopback IP or "localhost". An empty host (every
// interface), 0.0.0.0 and :: are not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
