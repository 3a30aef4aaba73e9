package notify

import (
	"bytes"
	"encoding/json"
	"net/mail"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		`{"name":"hook","type":"webhook","url":"https://example.com/x","headers":{"X-A":"b"}}`,
		`{"name":"s","type":"slack","url":"https://hooks.slack.com/services/T/B/X","severities":["critical"]}`,
		`{"name":"n","type":"ntfy","url":"https://ntfy.sh/t","token":"tk"}`,
		`{"name":"m","type":"email","smtp_host":"127.0.0.1","smtp_port":25,"tls":"none","from":"a@b.c","to":["c@d.e"]}`,
		`{"name":"m","type":"email","smtp_host":"smtp.x.org","username":"u","password":"<redacted>","from":"a@b.c","to":["c@d.e"]}`,
		`{"name":"\u202e","type":"discord","url":"http://[::1]:80/a"}`,
	} {
		f.Add([]byte(s))
	}
	d, err := NewDispatcher(DispatcherOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Config
		if json.Unmarshal(data, &c) != nil {
			return
		}
		err := c.Validate()
		r := c.Redact()
		if back := r.KeepSecrets(c); !reflect.DeepEqual(back, c) {
			t.Fatalf("Redact then KeepSecrets lost data: %+v -> %+v", c, back)
		}
		if err != nil {
			if msg := err.Error(); !strings.Contains(msg, ": ") {
				t.Fatalf("error does not name a field: %q", msg)
			}
			return
		}
		// A valid config formats without error for any message.
		if _, err := d.prepare(c, sampleMessage(3, string(data))); err != nil {
			t.Fatalf("valid config %+v does not format: %v", c, err)
		}
		if c.Type == TypeEmail {
			if _, err := mail.ParseAddress(c.From); err != nil {
				t.Fatalf("valid from %q does not parse", c.From)
			}
		}
	})
}

func FuzzFormats(f *testing.F) {
	f.Add(hostile, "title", "desc", "k", "v")
	f.Add("\\*_~`|", "<!here>", "@everyone\r\n", "<@U1>", "&amp;")
	f.Add(strings.Repeat("😀", 300), "\xff\xfe", "", "", "")
	f.Fuzz(func(t *testing.T, machine, title, desc, lk, lv string) {
		m := sampleMessage(30, machine)
		m.Title = title
		for i := range m.Alerts {
			m.Alerts[i].Description = desc
			m.Alerts[i].Labels = map[string]string{lk: lv}
		}
		if req, err := formatSlack(m); err != nil {
			t.Fatal(err)
		} else {
			_, texts := slackTexts(t, req.body)
			all := strings.ReplaceAll(strings.Join(texts, ""), "<https://hub.example/alerts|Open in sysmonstm>", "")
			if strings.ContainsAny(all, "<>") {
				t.Fatalf("slack: unescaped < or >")
			}
		}
		if req, err := formatDiscord(m, time.Now()); err != nil {
			t.Fatal(err)
		} else {
			checkDiscord(t, req.body)
		}
		req := formatNtfy(Config{}, m)
		if len(req.body) > 4096 || !utf8.Valid(req.body) {
			t.Fatalf("ntfy body %d bytes", len(req.body))
		}
		for _, c := range req.header.Get("Title") {
			if c < ' ' || c > '~' {
				t.Fatalf("ntfy Title has %q", c)
			}
		}
		msg, err := formatEmail(emailConfig(25), m, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := mail.ReadMessage(bytes.NewReader(msg.data))
		if err != nil {
			t.Fatalf("email does not parse: %v", err)
		}
		if len(parsed.Header) != 10 {
			t.Fatalf("email has %d headers, want 10 (injection?)", len(parsed.Header))
		}
	})
}
