package notify

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"
)

// TypeNtfy publishes to an ntfy topic.
const TypeNtfy = "ntfy"

// maxTokenLen bounds an ntfy access token.
const maxTokenLen = 512

// ntfyChannel is the Channel of TypeNtfy.
type ntfyChannel struct{}

// Validate checks the topic URL and the optional token; headers and the
// e-mail fields are refused.
func (ntfyChannel) Validate(c Config) error {
	u, err := validateURL(c.URL)
	if err != nil {
		return err
	}
	if strings.Trim(u.Path, "/") == "" {
		return errors.New("url: needs the topic in the path, e.g. https://ntfy.sh/mytopic")
	}
	if err := refuseHeaders(c); err != nil {
		return err
	}
	if c.Token != "" {
		if err := validateToken(c.Token); err != nil {
			return err
		}
	}
	return refuseSMTP(c)
}

// Redact hides the access token; the topic URL is shown.
func (ntfyChannel) Redact(c *Config) { redactString(&c.Token) }

// Form: the topic URL and an optional access token.
func (ntfyChannel) Form() Form {
	return Form{Label: "ntfy", Fields: []Field{
		{Name: "url", Label: "URL", Kind: KindURL, Required: true, Placeholder: "the endpoint's URL", // shown: the topic is no secret
			Help: "the topic URL on the ntfy server, ending in /TOPIC"},
		{Name: "token", Label: "Access token", Kind: KindSecret, Redacted: true, Help: "optional"},
	}}
}

// Format builds the publish request.
func (ntfyChannel) Format(c Config, m Message, _ time.Time) (Payload, error) {
	return formatNtfy(c, m), nil
}

// ntfyBodyLimit keeps the message under ntfy's default 4096-byte limit
// (larger bodies become attachments or are refused).
const ntfyBodyLimit = 4000

// ntfyTitleLimit bounds the Title header, in runes.
const ntfyTitleLimit = 200

// formatNtfy builds the publish request: the plain-text body POSTed to the
// topic URL, with Title, Priority, Tags, Click (the hub link) and, when a
// token is set, Authorization: Bearer.
func formatNtfy(c Config, m Message) httpRequest {
	h := http.Header{}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Title", headerText(title(m, ntfyTitleLimit)))
	switch messageLevel(m) {
	case levelCritical:
		h.Set("Priority", "5")
		h.Set("Tags", "rotating_light")
	case levelWarning:
		h.Set("Priority", "4")
		h.Set("Tags", "warning")
	default:
		h.Set("Priority", "3")
		h.Set("Tags", "white_check_mark")
	}
	if m.Test {
		h.Set("Tags", h.Get("Tags")+",test_tube")
	}
	if u := discordURL(m.URL); u != "" {
		h.Set("Click", u)
	}
	if c.Token != "" {
		h.Set("Authorization", "Bearer "+c.Token)
	}
	return httpRequest{body: []byte(plainBody(m, ntfyBodyLimit)), header: h}
}

// headerText makes one-line text safe for an HTTP header value: ASCII as
// is, anything else as an RFC 2047 encoded word (ntfy decodes those). The
// input has no control characters (cleanLine).
func headerText(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	return mime.BEncoding.Encode("utf-8", s)
}

// validateToken checks an ntfy access token.
func validateToken(token string) error {
	if token == Redacted {
		return errors.New("token: is the redaction placeholder and no token is stored; send the real token")
	}
	if len(token) > maxTokenLen {
		return fmt.Errorf("token: longer than %d characters", maxTokenLen)
	}
	for _, r := range token {
		if r <= ' ' || r > '~' {
			return errors.New("token: must be printable ASCII without spaces")
		}
	}
	return nil
}
