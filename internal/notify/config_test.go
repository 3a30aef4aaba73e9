package notify

import (
	"reflect"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	hook := Config{Name: "hook", Type: TypeWebhook, URL: "https://example.com/hook"}
	mailCfg := Config{Name: "mail", Type: TypeEmail, SMTPHost: "smtp.example.com", From: "a@example.com", To: []string{"b@example.com"}}
	f := func(name string, c Config, wantErr string) {
		t.Helper()
		err := c.Validate()
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("%s: unexpected error %v", name, err)
		case wantErr != "" && err == nil:
			t.Errorf("%s: accepted, want error %q", name, wantErr)
		case wantErr != "" && !strings.Contains(err.Error(), wantErr):
			t.Errorf("%s: error %q, want %q", name, err, wantErr)
		}
	}
	with := func(c Config, mod func(*Config)) Config {
		c = c.clone()
		mod(&c)
		return c
	}
	f("webhook ok", hook, "")
	f("http ok", with(hook, func(c *Config) { c.URL = "http://127.0.0.1:9000/x?k=v" }), "")
	f("no name", with(hook, func(c *Config) { c.Name = "  " }), "name: required")
	f("long name", with(hook, func(c *Config) { c.Name = strings.Repeat("n", 101) }), "name: longer than 100")
	f("control in name", with(hook, func(c *Config) { c.Name = "a\nb" }), "name: contains control")
	f("bad id", with(hook, func(c *Config) { c.ID = "a b" }), "id: ")
	f("unknown type", with(hook, func(c *Config) { c.Type = "pager" }), `type: unknown "pager"`)
	f("no type", with(hook, func(c *Config) { c.Type = "" }), `type: unknown ""`)
	f("severity", with(hook, func(c *Config) { c.Severities = []string{"critical", "info"} }), `severities[1]: unknown "info"`)
	f("severity twice", with(hook, func(c *Config) { c.Severities = []string{"warning", "warning"} }), "listed twice")
	f("no url", with(hook, func(c *Config) { c.URL = "" }), "url: required")
	f("ftp url", with(hook, func(c *Config) { c.URL = "ftp://example.com/x" }), "url: must be https:// or http://")
	f("relative url", with(hook, func(c *Config) { c.URL = "/hook" }), "url: must be https:// or http://")
	f("no host", with(hook, func(c *Config) { c.URL = "https:///x" }), "url: has no host")
	f("space in url", with(hook, func(c *Config) { c.URL = "https://example.com/a b" }), "url: contains spaces")
	f("redacted url", with(hook, func(c *Config) { c.URL = Redacted }), "url: is the redaction placeholder")
	f("long url", with(hook, func(c *Config) { c.URL = "https://example.com/" + strings.Repeat("a", 2048) }), "url: longer than")
	f("header ok", with(hook, func(c *Config) { c.Headers = map[string]string{"Authorization": "Bearer x"} }), "")
	f("header CRLF", with(hook, func(c *Config) { c.Headers = map[string]string{"X-A": "a\r\nX-B: b"} }), "headers[X-A]: value must be printable ASCII")
	f("header name", with(hook, func(c *Config) { c.Headers = map[string]string{"X A": "v"} }), "not a valid HTTP header name")
	f("header host", with(hook, func(c *Config) { c.Headers = map[string]string{"host": "evil"} }), "headers[Host]: may not be set")
	f("header content-type", with(hook, func(c *Config) { c.Headers = map[string]string{"content-type": "text/plain"} }), "headers[Content-Type]: may not be set")
	f("header redacted", with(hook, func(c *Config) { c.Headers = map[string]string{"X-K": Redacted} }), "headers[X-K]: is the redaction placeholder")
	f("headers on slack", Config{Name: "s", Type: TypeSlack, URL: "https://hooks.slack.com/services/a", Headers: map[string]string{"X": "y"}}, "headers: only for type webhook")
	f("slack ok", Config{Name: "s", Type: TypeSlack, URL: "https://hooks.slack.com/services/T/B/X"}, "")
	f("slack no path", Config{Name: "s", Type: TypeSlack, URL: "https://hooks.slack.com"}, "url: needs the full slack webhook URL")
	f("discord ok", Config{Name: "d", Type: TypeDiscord, URL: "https://discord.com/api/webhooks/1/t"}, "")
	f("ntfy ok", Config{Name: "n", Type: TypeNtfy, URL: "https://ntfy.sh/topic", Token: "tk_abc"}, "")
	f("ntfy no topic", Config{Name: "n", Type: TypeNtfy, URL: "https://ntfy.sh/"}, "url: needs the topic")
	f("ntfy token space", Config{Name: "n", Type: TypeNtfy, URL: "https://ntfy.sh/t", Token: "a b"}, "token: must be printable ASCII")
	f("token on webhook", with(hook, func(c *Config) { c.Token = "x" }), "token: only for type ntfy")
	f("smtp on webhook", with(hook, func(c *Config) { c.SMTPHost = "x" }), "smtp_host: only for type email")
	f("to on webhook", with(hook, func(c *Config) { c.To = []string{"a@b.c"} }), "to: only for type email")

	f("email ok", mailCfg, "")
	f("email auth ok", with(mailCfg, func(c *Config) { c.Username, c.Password, c.SMTPPort, c.TLS = "u", "p", 465, TLSImplicit }), "")
	f("email no host", with(mailCfg, func(c *Config) { c.SMTPHost = "" }), "smtp_host: required")
	f("email host url", with(mailCfg, func(c *Config) { c.SMTPHost = "smtp://x" }), "smtp_host: must be a host name")
	f("email host port", with(mailCfg, func(c *Config) { c.SMTPHost = "smtp.example.com:587" }), "put the port in smtp_port")
	f("email port", with(mailCfg, func(c *Config) { c.SMTPPort = 70000 }), "smtp_port: 70000 out of range")
	f("email tls", with(mailCfg, func(c *Config) { c.TLS = "ssl" }), `tls: unknown "ssl"`)
	f("email none remote", with(mailCfg, func(c *Config) { c.TLS = TLSNone }), `tls: "none" (plaintext) is only allowed for a relay on loopback`)
	f("email none loopback", with(mailCfg, func(c *Config) { c.TLS, c.SMTPHost = TLSNone, "127.0.0.1" }), "")
	f("email none localhost", with(mailCfg, func(c *Config) { c.TLS, c.SMTPHost = TLSNone, "localhost" }), "")
	f("email none ::1", with(mailCfg, func(c *Config) { c.TLS, c.SMTPHost = TLSNone, "::1" }), "")
	f("email none creds", with(mailCfg, func(c *Config) { c.TLS, c.SMTPHost, c.Username, c.Password = TLSNone, "127.0.0.1", "u", "p" }), "username: credentials are never sent without TLS")
	f("email user no pass", with(mailCfg, func(c *Config) { c.Username = "u" }), "password: required with username")
	f("email pass no user", with(mailCfg, func(c *Config) { c.Password = "p" }), "username: required with password")
	f("email redacted pass", with(mailCfg, func(c *Config) { c.Username, c.Password = "u", Redacted }), "password: is the redaction placeholder")
	f("email no from", with(mailCfg, func(c *Config) { c.From = "" }), "from: required")
	f("email bad from", with(mailCfg, func(c *Config) { c.From = "not an address" }), "from: ")
	f("email from CRLF", with(mailCfg, func(c *Config) { c.From = "a@b.c\r\nBcc: x@y.z" }), "from: contains a line break")
	f("email no to", with(mailCfg, func(c *Config) { c.To = nil }), "to: at least one address")
	f("email bad to", with(mailCfg, func(c *Config) { c.To = []string{"ok@example.com", "nope"} }), `to[1]: "nope" is not an e-mail address`)
	f("email utf8 address", with(mailCfg, func(c *Config) { c.To = []string{"Jörg <jörg@example.com>"} }), "to[0]: address \"jörg@example.com\" must be ASCII")
	f("email utf8 name ok", with(mailCfg, func(c *Config) { c.To = []string{"Jörg <joerg@example.com>"} }), "")
	f("email many to", with(mailCfg, func(c *Config) { c.To = make([]string, 51) }), "to: more than 50")
	f("email url", with(mailCfg, func(c *Config) { c.URL = "https://x/y" }), "url: not used by type email")
	f("email insecure none", with(mailCfg, func(c *Config) { c.TLS, c.SMTPHost, c.InsecureSkipVerify = TLSNone, "127.0.0.1", true }), "insecure_skip_verify")
}

func TestRedact(t *testing.T) {
	f := func(in, want Config) {
		t.Helper()
		orig := in.clone()
		got := in.Redact()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Redact(%+v) = %+v, want %+v", in, got, want)
		}
		if !reflect.DeepEqual(in, orig) {
			t.Errorf("Redact changed its input: %+v", in)
		}
	}
	f(Config{Type: TypeWebhook, URL: "https://h/x", Headers: map[string]string{"A": "1", "B": "2"}},
		Config{Type: TypeWebhook, URL: Redacted, Headers: map[string]string{"A": Redacted, "B": Redacted}})
	f(Config{Type: TypeSlack, URL: "https://hooks.slack.com/services/T/B/X"}, Config{Type: TypeSlack, URL: Redacted})
	f(Config{Type: TypeDiscord, URL: "https://discord.com/api/webhooks/1/t"}, Config{Type: TypeDiscord, URL: Redacted})
	f(Config{Type: TypeNtfy, URL: "https://ntfy.sh/t", Token: "tk"}, Config{Type: TypeNtfy, URL: "https://ntfy.sh/t", Token: Redacted})
	f(Config{Type: TypeNtfy, URL: "https://ntfy.sh/t"}, Config{Type: TypeNtfy, URL: "https://ntfy.sh/t"})
	f(Config{Type: TypeEmail, SMTPHost: "h", Username: "u", Password: "p", To: []string{"a@b"}},
		Config{Type: TypeEmail, SMTPHost: "h", Username: "u", Password: Redacted, To: []string{"a@b"}})
	f(Config{Type: TypeEmail, SMTPHost: "h"}, Config{Type: TypeEmail, SMTPHost: "h"})
}

func TestKeepSecrets(t *testing.T) {
	old := Config{Type: TypeWebhook, URL: "https://h/secret", Headers: map[string]string{"Authorization": "Bearer s", "X-K": "k"}, Token: "tk", Password: "pw"}
	f := func(name string, in, want Config) {
		t.Helper()
		orig := in.clone()
		got := in.KeepSecrets(old)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, want %+v", name, got, want)
		}
		if !reflect.DeepEqual(in, orig) {
			t.Errorf("%s: KeepSecrets changed its input", name)
		}
	}
	f("round trip", old.Redact(), old)
	f("all redacted", Config{Type: TypeWebhook, URL: Redacted, Token: Redacted, Password: Redacted},
		Config{Type: TypeWebhook, URL: "https://h/secret", Token: "tk", Password: "pw"})
	f("new values win", Config{Type: TypeWebhook, URL: "https://h/new", Headers: map[string]string{"X-K": "new"}},
		Config{Type: TypeWebhook, URL: "https://h/new", Headers: map[string]string{"X-K": "new"}})
	f("header per key, case-insensitive", Config{Headers: map[string]string{"authorization": Redacted, "X-New": Redacted, "X-K": "changed"}},
		Config{Headers: map[string]string{"authorization": "Bearer s", "X-New": Redacted, "X-K": "changed"}})
	f("cleared stays cleared", Config{Type: TypeWebhook, URL: "https://h/x"}, Config{Type: TypeWebhook, URL: "https://h/x"})
	// A placeholder with nothing behind it is rejected by Validate.
	c := Config{Name: "n", Type: TypeWebhook, URL: "https://h/x", Headers: map[string]string{"X-New": Redacted}}.KeepSecrets(old)
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "headers[X-New]") {
		t.Errorf("Validate after KeepSecrets: %v", err)
	}
}

func TestCleanLine(t *testing.T) {
	f := func(in string, max int, want string) {
		t.Helper()
		if got := cleanLine(in, max); got != want {
			t.Errorf("cleanLine(%q, %d) = %q, want %q", in, max, got, want)
		}
	}
	f("web-1", 0, "web-1")
	f("a\r\nb\tc", 0, "a  b c")
	f("a\xffb", 0, "a\ufffdb")
	f("x\u202ey\u2066z\u2028", 0, "x y z ")
	f("héllo wörld", 5, "héllo…")
	f("abcde", 5, "abcde")
	f("ab   cdef", 4, "ab…")
	if got := cleanText("a\r\nb\rc\n", 0); got != "a\nb\nc\n" {
		t.Errorf("cleanText %q", got)
	}
}
