package notify

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// slackTexts returns every mrkdwn text in a Slack payload and checks the
// service's limits on the way.
func slackTexts(t *testing.T, body []byte) (slackPayload, []string) {
	t.Helper()
	var p slackPayload
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	if !utf8.Valid(body) {
		t.Error("body is not valid UTF-8")
	}
	texts := []string{p.Text}
	if len(p.Attachments) != 1 {
		t.Fatalf("%d attachments", len(p.Attachments))
	}
	blocks := p.Attachments[0].Blocks
	if len(blocks) > 50 {
		t.Errorf("%d blocks, Slack allows 50", len(blocks))
	}
	for _, b := range blocks {
		if b.Text != nil {
			if b.Text.Type != "mrkdwn" {
				t.Errorf("text type %q", b.Text.Type)
			}
			if n := utf16Len(b.Text.Text); n > slackSectionLimit {
				t.Errorf("section text %d characters, Slack allows %d", n, slackSectionLimit)
			}
			texts = append(texts, b.Text.Text)
		}
		for _, e := range b.Elements {
			texts = append(texts, e.Text)
		}
	}
	return p, texts
}

func TestSlackEscapesAgentStrings(t *testing.T) {
	rec := newRecorder(t, status(200, "ok"))
	d, _, _ := testDispatcher(t, DispatcherOptions{})
	c := Config{ID: "s", Name: "slack", Type: TypeSlack, URL: rec.URL + "/services/T0/B0/XYZ"}
	m := sampleMessage(3, hostile)
	m.Alerts[0].Labels["<@U123>"] = "a&b"
	if err := send(t, d, c, m); err != nil {
		t.Fatal(err)
	}
	r := rec.last(t)
	if r.Method != "POST" || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request %s %v", r.Method, r.Header)
	}
	p, texts := slackTexts(t, r.Body)
	if p.Attachments[0].Color != "#d92d20" {
		t.Errorf("color %q for critical", p.Attachments[0].Color)
	}
	all := strings.Join(texts, "\n")
	for _, bad := range []string{"<!channel>", "<script>", "<@U123>", "\r", "\u202e", "\ufffd\ufffd\ufffd"} {
		if strings.Contains(all, bad) {
			t.Errorf("payload contains %q", bad)
		}
	}
	for _, want := range []string{"&lt;!channel&gt;", "&lt;script&gt;", "&lt;@U123&gt;=a&amp;b", "*Machine:*", "cpu_usage_percent", "97.25 (&gt; 90)"} {
		if !strings.Contains(all, want) {
			t.Errorf("payload lacks %q", want)
		}
	}
	// The only markup link is the hub's own.
	link := "<https://hub.example/alerts|Open in sysmonstm>"
	if !strings.Contains(all, link) {
		t.Errorf("hub link missing")
	}
	rest := strings.ReplaceAll(all, link, "")
	if strings.ContainsAny(rest, "<>") {
		t.Errorf("unescaped < or > outside the hub link")
	}
	// The machine name stays on its line: CR/LF in it became spaces.
	machineLines := 0
	for _, txt := range texts {
		for _, line := range strings.Split(txt, "\n") {
			if strings.HasPrefix(line, "*Machine:*") {
				machineLines++
				if !strings.Contains(line, "X-Injected: 1") || !strings.HasSuffix(line, "gnp.exe") {
					t.Errorf("machine line broken: %q", line)
				}
			}
		}
	}
	if machineLines != 3 {
		t.Errorf("%d machine lines, want 3", machineLines)
	}
}

func TestSlackManyLongAlertsStayWithinLimits(t *testing.T) {
	for _, n := range []int{1, 20, 21, 300} {
		req, err := formatSlack(sampleMessage(n, longHostile))
		if err != nil {
			t.Fatal(err)
		}
		_, texts := slackTexts(t, req.body)
		all := strings.Join(texts, "\n")
		if n > slackMaxAlerts && !strings.Contains(all, andMore(n-slackMaxAlerts)) {
			t.Errorf("n=%d: no %q", n, andMore(n-slackMaxAlerts))
		}
		if n <= slackMaxAlerts && strings.Contains(all, "more alert") {
			t.Errorf("n=%d: says more alerts", n)
		}
		if utf16Len(texts[0]) > 300 {
			t.Errorf("fallback text %d characters", utf16Len(texts[0]))
		}
		if strings.Contains(all, "<!channel>") {
			t.Errorf("n=%d: unescaped mention", n)
		}
	}
}

func TestSlackResolvedColor(t *testing.T) {
	m := sampleMessage(1, "web-1")
	m.Status = StatusResolved
	m.Alerts[0].State = StatusResolved
	req, err := formatSlack(m)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := slackTexts(t, req.body)
	if p.Attachments[0].Color != "#12b76a" {
		t.Errorf("resolved color %q", p.Attachments[0].Color)
	}
}
