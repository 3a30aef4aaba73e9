package metric

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// Limits bound what one series may look like. The zero value is not useful;
// start from DefaultLimits.
type Limits struct {
	MaxNameLength       int // bytes of a metric name
	MaxLabelNameLength  int // bytes of a label name
	MaxLabelValueLength int // bytes of a label value
	MaxLabels           int // labels per series, MachineLabel excluded
}

// DefaultLimits are the limits the hub applies unless configured otherwise.
var DefaultLimits = Limits{
	MaxNameLength:       200,
	MaxLabelNameLength:  100,
	MaxLabelValueLength: 1024,
	MaxLabels:           30,
}

// ValidMetricName reports whether s matches [a-zA-Z_:][a-zA-Z0-9_:]*.
func ValidMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}

// ValidLabelName reports whether s matches [a-zA-Z_][a-zA-Z0-9_]* and is not
// reserved (names starting with "__").
func ValidLabelName(s string) bool {
	if s == "" || (len(s) >= 2 && s[0] == '_' && s[1] == '_') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}

// ReservedPrefix starts the names of the hub's own series (such as
// sysmonstm_agent_seq, its record of each agent's last stored batch) and of
// its telemetry; agents may not send series with such names.
const ReservedPrefix = "sysmonstm_"

// ErrReservedName is wrapped by ValidateSeries for a name that starts with
// ReservedPrefix.
var ErrReservedName = errors.New("metric name reserved for the hub")

// ErrInvalidValue is returned for NaN and ±Inf values.
var ErrInvalidValue = errors.New("value is NaN or infinite")

// ValidateSeries checks a series identity against the limits. Labels must be
// sorted and unique; MachineLabel and names starting with ReservedPrefix are
// reserved for the hub.
func (lim Limits) ValidateSeries(name string, ls Labels) error {
	if len(name) > lim.MaxNameLength {
		return fmt.Errorf("metric name is %d bytes, limit %d", len(name), lim.MaxNameLength)
	}
	if !ValidMetricName(name) {
		return fmt.Errorf("invalid metric name %q: must match [a-zA-Z_:][a-zA-Z0-9_:]*", truncate(name))
	}
	if strings.HasPrefix(name, ReservedPrefix) {
		return fmt.Errorf("metric %s: %w (names starting with %q are the hub's own); rename it", name, ErrReservedName, ReservedPrefix)
	}
	if len(ls) > lim.MaxLabels {
		return fmt.Errorf("metric %s has %d labels, limit %d", name, len(ls), lim.MaxLabels)
	}
	for i, l := range ls {
		if len(l.Name) > lim.MaxLabelNameLength {
			return fmt.Errorf("metric %s: label name is %d bytes, limit %d", name, len(l.Name), lim.MaxLabelNameLength)
		}
		if !ValidLabelName(l.Name) {
			return fmt.Errorf("metric %s: invalid label name %q: must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __", name, truncate(l.Name))
		}
		if l.Name == MachineLabel {
			return fmt.Errorf("metric %s: label %q is reserved (set by the hub from the machine id)", name, MachineLabel)
		}
		if i > 0 && ls[i-1].Name >= l.Name {
			return fmt.Errorf("metric %s: labels not sorted or label %q repeated", name, l.Name)
		}
		if len(l.Value) > lim.MaxLabelValueLength {
			return fmt.Errorf("metric %s: value of label %s is %d bytes, limit %d", name, l.Name, len(l.Value), lim.MaxLabelValueLength)
		}
		if !utf8.ValidString(l.Value) {
			return fmt.Errorf("metric %s: value of label %s is not valid UTF-8", name, l.Name)
		}
	}
	return nil
}

// ValidateValue rejects NaN and ±Inf.
func ValidateValue(v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return ErrInvalidValue
	}
	return nil
}

// MaxMachineIDLength is the longest machine id the hub accepts, in bytes.
const MaxMachineIDLength = 253

// ValidateMachineID checks a machine id: 1–253 bytes of valid UTF-8 without
// control characters. Ids are otherwise free text and are shown as text only.
func ValidateMachineID(id string) error {
	if id == "" {
		return errors.New("machine id is empty")
	}
	if len(id) > MaxMachineIDLength {
		return fmt.Errorf("machine id is %d bytes, limit %d", len(id), MaxMachineIDLength)
	}
	if !utf8.ValidString(id) {
		return errors.New("machine id is not valid UTF-8")
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("machine id %q contains a control character", truncate(id))
		}
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
