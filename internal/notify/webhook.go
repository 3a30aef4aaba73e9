package notify

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
)

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
