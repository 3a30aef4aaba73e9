package notify

import (
	"strings"
	"testing"
)

// TestChannelTable checks the table of channel types: names are unique,
// each resolves to its Channel, and each Channel refuses an empty config
// with an error naming a field.
func TestChannelTable(t *testing.T) {
	seen := map[string]bool{}
	for _, typ := range Types() {
		if seen[typ] {
			t.Fatalf("type %q listed twice", typ)
		}
		seen[typ] = true
		ch, ok := lookupChannel(typ)
		if !ok {
			t.Fatalf("type %q has no Channel", typ)
		}
		err := ch.Validate(Config{Name: "n", Type: typ})
		if err == nil || !strings.Contains(err.Error(), ": ") {
			t.Errorf("%s: empty config: %v, want an error naming a field", typ, err)
		}
	}
	if _, ok := lookupChannel("pager"); ok {
		t.Error("unknown type resolved")
	}
	err := Config{Name: "n", Type: "pager"}.Validate()
	if err == nil || err.Error() != `type: unknown "pager" (want one of webhook, slack, discord, ntfy, email)` {
		t.Errorf("unknown type: %v", err)
	}
	d, err := NewDispatcher(DispatcherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.prepare(Config{Type: "pager"}, Message{}); err == nil {
		t.Error("prepare of an unknown type succeeded")
	}
}

// TestRedactEveryType checks each channel type hides its own secrets and
// that headers, token and password are hidden whatever the type.
func TestRedactEveryType(t *testing.T) {
	for _, typ := range Types() {
		c := Config{Type: typ, URL: "https://h/secret", Headers: map[string]string{"X-K": "s"}, Token: "s", Password: "s"}
		r := c.Redact()
		if r.Headers["X-K"] != Redacted || r.Token != Redacted || r.Password != Redacted {
			t.Errorf("%s: secrets shown: %+v", typ, r)
		}
		wantURL := Redacted
		if typ == TypeNtfy || typ == TypeEmail {
			wantURL = c.URL // the ntfy topic URL is shown; email has none (Validate refuses one)
		}
		if r.URL != wantURL {
			t.Errorf("%s: url %q, want %q", typ, r.URL, wantURL)
		}
		if c.Headers["X-K"] != "s" {
			t.Fatalf("%s: Redact changed its receiver", typ)
		}
	}
}
