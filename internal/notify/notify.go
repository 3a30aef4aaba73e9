// Package notify delivers alert notifications to channels: a generic JSON
// webhook, Slack, Discord, ntfy and e-mail over SMTP. Each channel type is
// a Channel in its own file, listed in one table (channel.go), that checks
// its configuration, redacts its secrets and formats a Message for its
// service's documented API; the Dispatcher retries with backoff and counts
// every outcome.
//
// The alert engine decides what to send and when (routing, grouping,
// repeats, acknowledgements, silences); this package only formats and
// delivers.
package notify

import "time"

// Status is a channel's delivery record, shown in the UI and the API.
type Status struct {
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	Sent        uint64    `json:"sent"`   // messages delivered
	Failed      uint64    `json:"failed"` // messages given up on after every retry
}

// Message status.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Message is one notification: a group of alerts that changed together
// (fired, repeated or resolved within the grouping window).
type Message struct {
	// Status is StatusFiring when any alert in the group fires, else
	// StatusResolved.
	Status string
	// Title is a one-line summary, e.g. "[FIRING:2] cpu high on web-1, web-2".
	Title  string
	Alerts []Alert
	// URL links to the hub's alerts page; "" when unknown.
	URL string
	// Test is set for the "send test" action.
	Test bool
}

// Alert is one alert in a Message. Every string that came from an agent
// (Machine, Labels) is untrusted: formats escape it for their markup.
type Alert struct {
	ID           string
	RuleID       string
	RuleName     string
	Machine      string
	Metric       string
	Labels       map[string]string
	Severity     string // "warning" or "critical"
	State        string // "firing" or "resolved"
	Value        float64
	Threshold    float64
	Op           string // ">", ">=", "<", "<="
	Description  string // rendered description
	StartedAt    time.Time
	ResolvedAt   time.Time // zero unless resolved
	Acknowledged bool
	AckedBy      string
	Silenced     bool
}

// Config is one configured channel (a "notifier" in the API). Type-specific
// fields are documented per type, and each type's Channel checks them; the JSON form is what POST /api/notifiers
// takes and, with secrets redacted, what GET returns.
type Config struct {
	ID   string `json:"id" yaml:"id"`
	Name string `json:"name" yaml:"name"`
	Type string `json:"type" yaml:"type"`
	// Severities routes alerts of rules that name no notifiers: this
	// channel receives those of the listed severities ("warning",
	// "critical"); empty receives none of them (only rules naming it).
	Severities []string `json:"severities,omitempty" yaml:"severities,omitempty"`

	// URL is the endpoint: the webhook URL (webhook), the incoming-webhook
	// URL (slack, discord), or the topic URL https://ntfy.sh/TOPIC (ntfy).
	// Secret: webhook URLs carry tokens.
	URL string `json:"url,omitempty" yaml:"url,omitempty"`
	// Headers are extra HTTP headers (webhook only). Secret values.
	Headers map[string]string `json:"headers,omitempty" yaml:"headers,omitempty"`
	// Token is an ntfy access token (Authorization: Bearer). Secret.
	Token string `json:"token,omitempty" yaml:"token,omitempty"`

	// E-mail (SMTP).
	SMTPHost string   `json:"smtp_host,omitempty" yaml:"smtp_host,omitempty"`
	SMTPPort int      `json:"smtp_port,omitempty" yaml:"smtp_port,omitempty"`
	Username string   `json:"username,omitempty" yaml:"username,omitempty"`
	Password string   `json:"password,omitempty" yaml:"password,omitempty"` // secret
	From     string   `json:"from,omitempty" yaml:"from,omitempty"`
	To       []string `json:"to,omitempty" yaml:"to,omitempty"`
	// TLS is "starttls" (default; required, not opportunistic), "tls"
	// (implicit TLS, e.g. port 465) or "none" (plaintext; only for a relay
	// on loopback).
	TLS string `json:"tls,omitempty" yaml:"tls,omitempty"`
	// InsecureSkipVerify disables certificate checks (self-signed relays).
	InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty" yaml:"insecure_skip_verify,omitempty"`
}

// Redacted is the value secrets are replaced with in API answers. Sending it
// back on an update keeps the stored secret.
const Redacted = "<redacted>"
