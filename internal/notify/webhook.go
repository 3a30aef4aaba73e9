package notify

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TypeWebhook is the generic JSON webhook: the WebhookPayload POSTed to a
// URL of the operator's choice, with optional extra headers.
const TypeWebhook = "webhook"

// Limits on a webhook's extra headers.
const (
	maxHeaders       = 20
	maxHeaderNameLen = 100
	maxHeaderValLen  = 4096
)

// webhookChannel is the Channel of TypeWebhook.
type webhookChannel struct{}

// Validate checks url and headers; token and the e-mail fields are refused.
func (webhookChannel) Validate(c Config) error {
	if _, err := validateURL(c.URL); err != nil {
		return err
	}
	if err := validateHeaders(c.Headers); err != nil {
		return err
	}
	if err := refuseToken(c); err != nil {
		return err
	}
	return refuseSMTP(c)
}

// Redact hides the URL (it carries tokens) and every header value.
func (webhookChannel) Redact(c *Config) {
	redactString(&c.URL)
	redactHeaders(c)
}

// Form: the endpoint and extra request headers.
func (webhookChannel) Form() Form {
	return Form{Label: "Webhook", Fields: []Field{
		hookURL("the endpoint that receives a JSON POST"),
		{Name: "headers", Label: "Headers", Kind: KindHeaders, Redacted: true, Placeholder: "Authorization: Bearer …",
			Help: "one per line, Name: value; " + Redacted + " keeps a stored value"},
	}}
}

// Format builds the JSON payload.
func (webhookChannel) Format(c Config, m Message, _ time.Time) (Payload, error) {
	return payloadOf(formatWebhook(c, m))
}

// maxWebhookAlerts bounds the alerts in one webhook payload; the rest are
// counted in truncated_alerts.
const maxWebhookAlerts = 500

// WebhookPayload is the JSON body of a webhook notification, version "1".
// Agent-provided strings (machine, labels) are passed as they are, JSON
// encoded; receivers must treat them as untrusted.
type WebhookPayload struct {
	Version string `json:"version"`
	// Status is "firing" when any alert in the group fires, else
	// "resolved".
	Status string         `json:"status"`
	Title  string         `json:"title"`
	URL    string         `json:"url"`
	Test   bool           `json:"test"`
	Alerts []WebhookAlert `json:"alerts"`
	// TruncatedAlerts is how many alerts were left out past the first 500.
	TruncatedAlerts int `json:"truncated_alerts,omitempty"`
}

// WebhookAlert is one alert in a WebhookPayload. Times are RFC 3339 UTC.
type WebhookAlert struct {
	ID           string            `json:"id"`
	RuleID       string            `json:"rule_id"`
	RuleName     string            `json:"rule_name"`
	Machine      string            `json:"machine"`
	Metric       string            `json:"metric"`
	Labels       map[string]string `json:"labels"`
	Severity     string            `json:"severity"`
	State        string            `json:"state"`
	Value        JSONFloat         `json:"value"`
	Threshold    JSONFloat         `json:"threshold"`
	Op           string            `json:"op"`
	Description  string            `json:"description"`
	StartedAt    string            `json:"started_at"`
	ResolvedAt   string            `json:"resolved_at,omitempty"`
	Acknowledged bool              `json:"acknowledged"`
	AckedBy      string            `json:"acked_by"`
	Silenced     bool              `json:"silenced"`
}

// JSONFloat is a float64 that encodes NaN and ±Inf as null (JSON has no
// number for them).
type JSONFloat float64

// MarshalJSON implements json.Marshaler.
func (f JSONFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

// NewWebhookPayload builds the webhook payload of m.
func NewWebhookPayload(m Message) WebhookPayload {
	p := WebhookPayload{
		Version: "1",
		Status:  statusWord(m),
		Title:   m.Title,
		URL:     m.URL,
		Test:    m.Test,
		Alerts:  make([]WebhookAlert, 0, min(len(m.Alerts), maxWebhookAlerts)),
	}
	for i, a := range m.Alerts {
		if i == maxWebhookAlerts {
			p.TruncatedAlerts = len(m.Alerts) - i
			break
		}
		labels := a.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		p.Alerts = append(p.Alerts, WebhookAlert{
			ID:           a.ID,
			RuleID:       a.RuleID,
			RuleName:     a.RuleName,
			Machine:      a.Machine,
			Metric:       a.Metric,
			Labels:       labels,
			Severity:     a.Severity,
			State:        a.State,
			Value:        JSONFloat(a.Value),
			Threshold:    JSONFloat(a.Threshold),
			Op:           a.Op,
			Description:  a.Description,
			StartedAt:    formatTime(a.StartedAt),
			ResolvedAt:   formatTime(a.ResolvedAt),
			Acknowledged: a.Acknowledged,
			AckedBy:      a.AckedBy,
			Silenced:     a.Silenced,
		})
	}
	return p
}

// formatWebhook builds the webhook request: the JSON payload.
func formatWebhook(_ Config, m Message) (httpRequest, error) {
	body, err := json.Marshal(NewWebhookPayload(m))
	if err != nil {
		return httpRequest{}, err
	}
	return httpRequest{body: body, header: http.Header{"Content-Type": {"application/json"}}}, nil
}

// forbiddenHeaders are headers a webhook config may not set: the transport
// owns them, and the body is always JSON.
var forbiddenHeaders = []string{"Host", "Content-Length", "Content-Type", "Transfer-Encoding", "Connection", "Te", "Trailer", "Upgrade", "Expect"}

// validateHeaders checks the extra HTTP headers of a webhook.
func validateHeaders(h map[string]string) error {
	if len(h) > maxHeaders {
		return fmt.Errorf("headers: more than %d", maxHeaders)
	}
	for _, k := range slices.Sorted(maps.Keys(h)) {
		if err := validateHeader(k, h[k]); err != nil {
			return err
		}
	}
	return nil
}

// validateHeader checks one extra webhook header.
func validateHeader(k, v string) error {
	if k == "" || len(k) > maxHeaderNameLen {
		return fmt.Errorf("headers: name %q must be 1 to %d characters", k, maxHeaderNameLen)
	}
	for _, r := range k {
		if !isTokenRune(r) {
			return fmt.Errorf("headers: name %q is not a valid HTTP header name", k)
		}
	}
	canon := textproto.CanonicalMIMEHeaderKey(k)
	if slices.Contains(forbiddenHeaders, canon) {
		return fmt.Errorf("headers[%s]: may not be set (the sender owns it)", canon)
	}
	if v == Redacted {
		return fmt.Errorf("headers[%s]: is the redaction placeholder and no value is stored for it; send the real value", canon)
	}
	if len(v) > maxHeaderValLen {
		return fmt.Errorf("headers[%s]: value longer than %d bytes", canon, maxHeaderValLen)
	}
	for _, r := range v {
		if r < ' ' && r != '\t' || r == 0x7f || r > '~' {
			return fmt.Errorf("headers[%s]: value must be printable ASCII (no CR, LF or control characters)", canon)
		}
	}
	return nil
}

// isTokenRune reports whether r may appear in an HTTP header name (RFC 9110
// token).
func isTokenRune(r rune) bool {
	if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
		return true
	}
	return strings.ContainsRune("!#$%&'*+-.^_`|~", r)
}
