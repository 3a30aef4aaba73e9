package notify

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// TypeSlack posts to a Slack incoming webhook.
const TypeSlack = "slack"

// slackChannel is the Channel of TypeSlack.
type slackChannel struct{}

// Validate checks the incoming-webhook URL; every other field is refused.
func (slackChannel) Validate(c Config) error { return validateHookOnly(c) }

// Redact hides the URL: its path is the secret.
func (slackChannel) Redact(c *Config) { redactString(&c.URL) }

// Form: a Slack incoming-webhook URL.
func (slackChannel) Form() Form {
	return Form{Label: "Slack", Fields: []Field{hookURL("a Slack incoming-webhook URL")}}
}

// Format builds the Block Kit message.
func (slackChannel) Format(_ Config, m Message, _ time.Time) (Payload, error) {
	return payloadOf(formatSlack(m))
}

// Slack limits (Block Kit): 3000 characters of section text, 50 blocks per
// message. One message lists at most slackMaxAlerts alerts.
const (
	slackSectionLimit = 3000
	slackMaxAlerts    = 20
)

// slackEscaper applies Slack's documented escaping for the three control
// characters of its markup, so agent strings cannot form links, user or
// channel mentions (<!channel>, <@U…>).
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func escapeSlack(s string) string { return slackEscaper.Replace(s) }

// slackColor is the attachment bar's colour per level.
func slackColor(l level) string {
	switch l {
	case levelCritical:
		return "#d92d20"
	case levelWarning:
		return "#f79009"
	}
	return "#12b76a"
}

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackAttachment struct {
	Color  string       `json:"color"`
	Blocks []slackBlock `json:"blocks"`
}

type slackPayload struct {
	Text        string            `json:"text"`
	Attachments []slackAttachment `json:"attachments"`
}

// slackFit escapes s for Slack mrkdwn within limit characters.
func slackFit(s string, limit int) string { return fit(s, limit, escapeSlack, utf16Len) }

// formatSlack builds the incoming-webhook request: a fallback "text" (what
// notifications show) and one attachment coloured by severity holding
// Block Kit sections, one per alert.
func formatSlack(m Message) (httpRequest, error) {
	t := title(m, 2000)
	head := "*" + slackFit(t, 1000) + "*\n" + escapeSlack(countStates(m))
	if m.Test {
		head += "\n_This is a test notification from sysmonstm._"
	}
	blocks := []slackBlock{mrkdwnSection(head)}
	shown := min(len(m.Alerts), slackMaxAlerts)
	for _, a := range m.Alerts[:shown] {
		blocks = append(blocks, mrkdwnSection(slackAlert(a)))
	}
	var ctx []string
	if n := len(m.Alerts) - shown; n > 0 {
		ctx = append(ctx, escapeSlack(andMore(n)))
	}
	if u := slackURL(m.URL); u != "" {
		ctx = append(ctx, "<"+u+"|Open in sysmonstm>")
	}
	if len(ctx) > 0 {
		blocks = append(blocks, slackBlock{Type: "context", Elements: []slackText{{Type: "mrkdwn", Text: strings.Join(ctx, " · ")}}})
	}
	p := slackPayload{
		Text:        slackFit(t, 300),
		Attachments: []slackAttachment{{Color: slackColor(messageLevel(m)), Blocks: blocks}},
	}
	body, err := json.Marshal(p)
	if err != nil {
		return httpRequest{}, err
	}
	return httpRequest{body: body, header: http.Header{"Content-Type": {"application/json"}}}, nil
}

func mrkdwnSection(text string) slackBlock {
	return slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: text}}
}

// slackAlert is one alert's section text; each part has its own budget so
// the whole stays under the section limit after escaping.
func slackAlert(a Alert) string {
	var b strings.Builder
	b.WriteString("*" + slackFit(alertHeadline(a), 300) + "*")
	b.WriteString("\n*Machine:* " + slackFit(cleanLine(a.Machine, 1000), 300))
	b.WriteString("\n" + slackFit(alertCondition(a), 700))
	if t := alertTimes(a); t != "" {
		b.WriteString("\n" + slackFit(t, 250))
	}
	if d := strings.TrimSpace(cleanText(a.Description, 5000)); d != "" {
		b.WriteString("\n" + slackFit(d, 1200))
	}
	return b.String()
}

// slackURL makes the hub link safe inside <url|text>: only http(s), with
// the characters that end the link percent-encoded.
func slackURL(raw string) string {
	u, err := url.Parse(raw)
	if raw == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return ""
	}
	return strings.NewReplacer("|", "%7C", "<", "%3C", ">", "%3E", "&", "&amp;").Replace(u.String())
}
