package notify

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// TypeDiscord posts to a Discord webhook.
const TypeDiscord = "discord"

// discordChannel is the Channel of TypeDiscord.
type discordChannel struct{}

// Validate checks the webhook URL; every other field is refused.
func (discordChannel) Validate(c Config) error { return validateHookOnly(c) }

// Redact hides the URL: its path is the secret.
func (discordChannel) Redact(c *Config) { redactString(&c.URL) }

// Form: a Discord channel's webhook URL.
func (discordChannel) Form() Form {
	return Form{Label: "Discord", Fields: []Field{hookURL("a Discord channel webhook URL")}}
}

// Format builds the embed message, time-stamped now.
func (discordChannel) Format(_ Config, m Message, now time.Time) (Payload, error) {
	return payloadOf(formatDiscord(m, now))
}

// Discord embed limits, in characters (counted here in UTF-16 code units,
// never less than Discord's count).
const (
	discordTitleLimit       = 256
	discordDescriptionLimit = 4096
	discordMaxFields        = 25
	discordFieldNameLimit   = 256
	discordFieldValueLimit  = 1024
	discordTotalLimit       = 6000
)

// discordEscaper backslash-escapes Discord markdown: emphasis, code,
// spoilers, quotes, headings, lists, masked links, mention and timestamp
// syntax, and "scheme:" so agent strings render as typed.
var discordEscaper = strings.NewReplacer(
	`\`, `\\`, `*`, `\*`, `_`, `\_`, `~`, `\~`, "`", "\\`", `|`, `\|`,
	`>`, `\>`, `<`, `\<`, `#`, `\#`, `-`, `\-`, `+`, `\+`, `[`, `\[`, `]`, `\]`,
	`(`, `\(`, `)`, `\)`, `@`, `\@`, `:`, `\:`,
)

func escapeDiscord(s string) string { return discordEscaper.Replace(s) }

// discordFit escapes s for Discord markdown within limit characters.
func discordFit(s string, limit int) string { return fit(s, limit, escapeDiscord, utf16Len) }

// discordColor is the embed colour per level.
func discordColor(l level) int {
	switch l {
	case levelCritical:
		return 0xd92d20
	case levelWarning:
		return 0xf79009
	}
	return 0x12b76a
}

type discordField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline"`
}

type discordFooter struct {
	Text string `json:"text"`
}

type discordEmbed struct {
	Title       string         `json:"title"`
	Description string         `json:"description"`
	URL         string         `json:"url,omitempty"`
	Color       int            `json:"color"`
	Fields      []discordField `json:"fields"`
	Footer      discordFooter  `json:"footer"`
	Timestamp   string         `json:"timestamp"`
}

type discordAllowedMentions struct {
	Parse []string `json:"parse"`
}

type discordPayload struct {
	Embeds          []discordEmbed         `json:"embeds"`
	AllowedMentions discordAllowedMentions `json:"allowed_mentions"`
}

// formatDiscord builds the webhook request: one embed coloured by
// severity with a field per alert, within Discord's limits, and mentions
// disabled (allowed_mentions.parse is empty).
func formatDiscord(m Message, now time.Time) (httpRequest, error) {
	desc := escapeDiscord(countStates(m))
	if m.Test {
		desc += "\n*This is a test notification from sysmonstm\\.*"
	}
	e := discordEmbed{
		Title:       discordFit(title(m, 2000), discordTitleLimit),
		Description: desc,
		URL:         discordURL(m.URL),
		Color:       discordColor(messageLevel(m)),
		Footer:      discordFooter{Text: "sysmonstm"},
		Timestamp:   now.UTC().Format(time.RFC3339),
	}
	if e.Title == "" {
		e.Title = "sysmonstm"
	}
	fields := make([]discordField, 0, min(len(m.Alerts), discordMaxFields))
	for _, a := range m.Alerts {
		if len(fields) == discordMaxFields-1 && len(m.Alerts) > discordMaxFields {
			break
		}
		fields = append(fields, discordAlert(a))
	}
	shown := len(fields)
	for {
		e.Fields = fields[:shown]
		if more := len(m.Alerts) - shown; more > 0 {
			e.Fields = append(e.Fields[:shown:shown], discordField{Name: "\u2026", Value: escapeDiscord(andMore(more))})
		}
		if discordSize(e) <= discordTotalLimit || shown == 0 {
			break
		}
		shown--
	}
	p := discordPayload{Embeds: []discordEmbed{e}, AllowedMentions: discordAllowedMentions{Parse: []string{}}}
	body, err := json.Marshal(p)
	if err != nil {
		return httpRequest{}, err
	}
	return httpRequest{body: body, header: http.Header{"Content-Type": {"application/json"}}}, nil
}

// discordAlert is one alert as an embed field.
func discordAlert(a Alert) discordField {
	var b strings.Builder
	b.WriteString("**Machine:** " + discordFit(cleanLine(a.Machine, 1000), 200))
	b.WriteString("\n" + discordFit(alertCondition(a), 300))
	if t := alertTimes(a); t != "" {
		b.WriteString("\n" + discordFit(t, 150))
	}
	if d := strings.TrimSpace(cleanText(a.Description, 5000)); d != "" {
		b.WriteString("\n" + discordFit(d, 300))
	}
	name := discordFit(alertHeadline(a), discordFieldNameLimit)
	if name == "" {
		name = "\u2026"
	}
	return discordField{Name: name, Value: b.String()}
}

// discordSize is the embed's size as Discord counts it: title,
// description, field names and values, footer.
func discordSize(e discordEmbed) int {
	n := utf16Len(e.Title) + utf16Len(e.Description) + utf16Len(e.Footer.Text)
	for _, f := range e.Fields {
		n += utf16Len(f.Name) + utf16Len(f.Value)
	}
	return n
}

// discordURL is the hub link for the embed title, only when it is an
// http(s) URL.
func discordURL(raw string) string {
	u, err := url.Parse(raw)
	if raw == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || len(raw) > 2048 {
		return ""
	}
	return u.String()
}
