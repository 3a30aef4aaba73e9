package notify

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// checkDiscord parses a Discord payload and checks every documented limit.
func checkDiscord(t *testing.T, body []byte) (discordPayload, map[string]any) {
	t.Helper()
	if !utf8.Valid(body) {
		t.Error("body is not valid UTF-8")
	}
	var p discordPayload
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	var raw map[string]any
	_ = json.Unmarshal(body, &raw)
	am, ok := raw["allowed_mentions"].(map[string]any)
	if !ok {
		t.Fatal("no allowed_mentions")
	}
	if parse, ok := am["parse"].([]any); !ok || len(parse) != 0 {
		t.Errorf("allowed_mentions.parse = %v, want []", am["parse"])
	}
	if len(p.Embeds) != 1 {
		t.Fatalf("%d embeds", len(p.Embeds))
	}
	e := p.Embeds[0]
	check := func(what, s string, limit int) {
		if n := utf16Len(s); n > limit {
			t.Errorf("%s: %d characters, limit %d", what, n, limit)
		}
		if s == "" && what != "description" {
			t.Errorf("%s empty", what)
		}
	}
	check("title", e.Title, discordTitleLimit)
	check("description", e.Description, discordDescriptionLimit)
	if len(e.Fields) > discordMaxFields {
		t.Errorf("%d fields", len(e.Fields))
	}
	for i, f := range e.Fields {
		check("field name", f.Name, discordFieldNameLimit)
		check("field value", f.Value, discordFieldValueLimit)
		_ = i
	}
	if n := discordSize(e); n > discordTotalLimit {
		t.Errorf("embed total %d characters", n)
	}
	if _, err := time.Parse(time.RFC3339, e.Timestamp); err != nil {
		t.Errorf("timestamp %q", e.Timestamp)
	}
	return p, raw
}

func TestDiscordEscapesAndDisablesMentions(t *testing.T) {
	rec := newRecorder(t)
	d, _, _ := testDispatcher(t, DispatcherOptions{})
	c := Config{ID: "d", Name: "discord", Type: TypeDiscord, URL: rec.URL + "/api/webhooks/1/tok"}
	m := sampleMessage(2, hostile)
	if err := send(t, d, c, m); err != nil {
		t.Fatal(err)
	}
	r := rec.last(t)
	if r.Method != "POST" || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request %s %v", r.Method, r.Header)
	}
	p, raw := checkDiscord(t, r.Body)
	if _, ok := raw["content"]; ok {
		t.Error("content set; only embeds are sent")
	}
	e := p.Embeds[0]
	if e.Color != 0xd92d20 {
		t.Errorf("color %x", e.Color)
	}
	if e.URL != "https://hub.example/alerts" {
		t.Errorf("url %q", e.URL)
	}
	var all strings.Builder
	all.WriteString(e.Title + "\n" + e.Description + "\n")
	for _, f := range e.Fields {
		all.WriteString(f.Name + "\n" + f.Value + "\n")
	}
	s := all.String()
	// Every markdown character from the agent string is escaped.
	for _, want := range []string{`\<!channel\>`, `\@everyone`, `\*\*bold\*\*`, `\[x\]\(https\://evil.example\)`, "\\`code\\`", `\|spoiler\|`} {
		if !strings.Contains(s, want) {
			t.Errorf("payload lacks %q", want)
		}
	}
	for _, bad := range []string{" @everyone", "**bold**", "[x](", "<script>", "\r", "\u202e"} {
		if strings.Contains(s, bad) {
			t.Errorf("payload contains %q", bad)
		}
	}
	if len(e.Fields) != 2 || !strings.HasPrefix(e.Fields[0].Value, "**Machine:** ") {
		t.Errorf("fields %+v", e.Fields)
	}
}

func TestDiscordLimits(t *testing.T) {
	for _, n := range []int{0, 1, 24, 25, 26, 100} {
		for _, machine := range []string{"web-1", longHostile, strings.Repeat("é😀", 3000)} {
			m := sampleMessage(n, machine)
			m.Title = longHostile
			req, err := formatDiscord(m, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			p, _ := checkDiscord(t, req.body)
			fields := p.Embeds[0].Fields
			shown := 0
			for _, f := range fields {
				if f.Name != "\u2026" {
					shown++
				}
			}
			if shown < n {
				last := fields[len(fields)-1].Value
				if want := escapeDiscord(andMore(n - shown)); last != want {
					t.Errorf("n=%d: last field %q, want %q", n, last, want)
				}
			}
			if n > 0 && shown == 0 {
				t.Errorf("n=%d machine len %d: no alert shown", n, len(machine))
			}
		}
	}
}

func TestFitKeepsEscapesWhole(t *testing.T) {
	// Cutting must never leave a dangling backslash that escapes the
	// ellipsis, nor split a multi-byte rune.
	s := strings.Repeat(`*_\`, 400) + "😀"
	for limit := 1; limit < 50; limit++ {
		out := discordFit(s, limit)
		if utf16Len(out) > limit || !utf8.ValidString(out) {
			t.Fatalf("limit %d: %q", limit, out)
		}
		body := strings.TrimSuffix(out, ellipsis)
		trailing := len(body) - len(strings.TrimRight(body, `\`))
		if trailing%2 != 0 {
			t.Fatalf("limit %d: dangling backslash in %q", limit, out)
		}
	}
}
