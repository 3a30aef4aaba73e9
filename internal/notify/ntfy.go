package notify

import (
	"mime"
	"net/http"
)

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
