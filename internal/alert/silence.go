package alert

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// maxSilence bounds a silence's length.
const maxSilence = 366 * 24 * time.Hour

// SilenceMatchers select the alerts a silence mutes; every given matcher
// must match. Machine and label values are exact, or globs with '*'.
type SilenceMatchers struct {
	RuleID  string            `json:"rule_id,omitempty"`
	Machine string            `json:"machine,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// Silence mutes the notifications of matching alerts between StartsAt and
// EndsAt. Silenced alerts still change state and show in the API.
type Silence struct {
	ID        string          `json:"id"`
	Matchers  SilenceMatchers `json:"matchers"`
	StartsAt  time.Time       `json:"starts_at"`
	EndsAt    time.Time       `json:"ends_at"`
	Comment   string          `json:"comment"`
	CreatedBy string          `json:"created_by"`
	CreatedAt time.Time       `json:"created_at"`
	// Active is computed when the silence is answered.
	Active bool `json:"active"`

	labels []metric.LabelMatcher // compiled Matchers.Labels
}

func (s *Silence) compile() { s.labels = compileMatchers(s.Matchers.Labels) }

func (s *Silence) activeAt(now time.Time) bool {
	return !now.Before(s.StartsAt) && now.Before(s.EndsAt)
}

// matches reports whether the silence's matchers select a.
func (s *Silence) matches(a *Alert) bool {
	m := &s.Matchers
	if m.RuleID != "" && m.RuleID != a.RuleID {
		return false
	}
	if m.Machine != "" && !matchName(m.Machine, a.Machine) {
		return false
	}
	for _, l := range s.labels {
		if !l.Matches(a.Labels[l.Name], metric.Star) {
			return false
		}
	}
	return true
}

// silenceInput is the body of POST /api/silences.
type silenceInput struct {
	Matchers SilenceMatchers `json:"matchers"`
	StartsAt *time.Time      `json:"starts_at"`
	EndsAt   *time.Time      `json:"ends_at"`
	Duration string          `json:"duration"`
	Comment  string          `json:"comment"`
	// Echoed fields of a silence are accepted and ignored.
	ID        string     `json:"id"`
	CreatedBy string     `json:"created_by"`
	CreatedAt *time.Time `json:"created_at"`
	Active    *bool      `json:"active"`
}

// decodeSilence parses and validates a new silence; now is the default
// start.
func decodeSilence(b []byte, now time.Time) (*Silence, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var in silenceInput
	if err := dec.Decode(&in); err != nil {
		return nil, jsonFieldError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fieldErr("body", "unexpected data after the JSON object")
	}
	s := &Silence{Matchers: in.Matchers, Comment: strings.TrimSpace(in.Comment), StartsAt: now}
	m := &s.Matchers
	m.RuleID = strings.TrimSpace(m.RuleID)
	m.Machine = strings.TrimSpace(m.Machine)
	if m.RuleID == "" && m.Machine == "" && len(m.Labels) == 0 {
		return nil, fieldErr("matchers", "at least one of rule_id, machine or labels is required (a silence of everything is too easy to forget)")
	}
	if m.RuleID != "" && !validID(m.RuleID) {
		return nil, fieldErr("matchers.rule_id", "%q is not a rule id", truncate(m.RuleID, 80))
	}
	if m.Machine != "" && !strings.Contains(m.Machine, "*") {
		if err := metric.ValidateMachineID(m.Machine); err != nil {
			return nil, fieldErr("matchers.machine", "%v", err)
		}
	}
	if len(m.Machine) > 256 {
		return nil, fieldErr("matchers.machine", "is %d bytes, limit 256", len(m.Machine))
	}
	if err := validateLabelMatchers("matchers.labels", m.Labels); err != nil {
		return nil, err
	}
	if len(s.Comment) > 1024 {
		return nil, fieldErr("comment", "is %d bytes, limit 1024", len(s.Comment))
	}
	if in.StartsAt != nil {
		s.StartsAt = *in.StartsAt
	}
	switch {
	case in.EndsAt != nil && in.Duration != "":
		return nil, fieldErr("duration", "give either ends_at or duration, not both")
	case in.EndsAt != nil:
		s.EndsAt = *in.EndsAt
	case in.Duration != "":
		d, err := parseDuration(in.Duration)
		if err != nil {
			return nil, fieldErr("duration", "%v", err)
		}
		if d <= 0 {
			return nil, fieldErr("duration", "must be positive")
		}
		s.EndsAt = s.StartsAt.Add(d)
	default:
		return nil, fieldErr("ends_at", `required (or "duration", e.g. "2h")`)
	}
	if !s.EndsAt.After(now) {
		return nil, fieldErr("ends_at", "is in the past: the silence would never be active")
	}
	if !s.EndsAt.After(s.StartsAt) {
		return nil, fieldErr("ends_at", "must be after starts_at")
	}
	if s.EndsAt.Sub(s.StartsAt) > maxSilence {
		return nil, fieldErr("ends_at", "a silence may last at most %s", formatDuration(maxSilence))
	}
	s.StartsAt, s.EndsAt = s.StartsAt.UTC(), s.EndsAt.UTC()
	s.compile()
	return s, nil
}
