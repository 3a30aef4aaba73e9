package notify

import (
	"errors"
	"fmt"
	"maps"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// Limits on the configuration values every type shares; each channel's
// file has its own.
const (
	maxNameLen = 100
	maxIDLen   = 64
	maxURLLen  = 2048
)

// Validate checks a channel configuration and returns a precise error naming
// the first invalid field by its JSON key, e.g. `url: must be https:// or
// http:// (got "ftp")`. It does not require ID (the store assigns it).
func (c Config) Validate() error {
	if err := validateID(c.ID); err != nil {
		return err
	}
	name := strings.TrimSpace(c.Name)
	switch {
	case name == "":
		return errors.New("name: required")
	case !utf8.ValidString(c.Name):
		return errors.New("name: not valid UTF-8")
	case utf8.RuneCountInString(c.Name) > maxNameLen:
		return fmt.Errorf("name: longer than %d characters", maxNameLen)
	case strings.ContainsFunc(c.Name, unsafeRune):
		return errors.New("name: contains control characters")
	}
	ch, ok := lookupChannel(c.Type)
	if !ok {
		return fmt.Errorf("type: unknown %q (want one of %s)", c.Type, strings.Join(Types(), ", "))
	}
	seen := map[string]bool{}
	for i, s := range c.Severities {
		if s != "warning" && s != "critical" {
			return fmt.Errorf("severities[%d]: unknown %q (want warning or critical)", i, s)
		}
		if seen[s] {
			return fmt.Errorf("severities[%d]: %q listed twice", i, s)
		}
		seen[s] = true
	}
	return ch.Validate(c)
}

func validateID(id string) error {
	if id == "" {
		return nil
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("id: longer than %d characters", maxIDLen)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("id: %q has characters other than letters, digits, '-', '_' and '.'", id)
		}
	}
	return nil
}

// refuseHeaders fails when c, of a type other than webhook, sets headers.
func refuseHeaders(c Config) error {
	if len(c.Headers) > 0 {
		return fmt.Errorf("headers: only for type webhook, not %s", c.Type)
	}
	return nil
}

// refuseToken fails when c, of a type other than ntfy, sets a token.
func refuseToken(c Config) error {
	if c.Token != "" {
		return fmt.Errorf("token: only for type ntfy, not %s", c.Type)
	}
	return nil
}

// refuseSMTP fails when c, of a type other than email, sets a field of
// e-mail.
func refuseSMTP(c Config) error {
	switch {
	case c.SMTPHost != "":
		return fmt.Errorf("smtp_host: only for type email, not %s", c.Type)
	case c.SMTPPort != 0:
		return fmt.Errorf("smtp_port: only for type email, not %s", c.Type)
	case c.Username != "":
		return fmt.Errorf("username: only for type email, not %s", c.Type)
	case c.Password != "":
		return fmt.Errorf("password: only for type email, not %s", c.Type)
	case c.From != "":
		return fmt.Errorf("from: only for type email, not %s", c.Type)
	case len(c.To) > 0:
		return fmt.Errorf("to: only for type email, not %s", c.Type)
	case c.TLS != "":
		return fmt.Errorf("tls: only for type email, not %s", c.Type)
	case c.InsecureSkipVerify:
		return fmt.Errorf("insecure_skip_verify: only for type email, not %s", c.Type)
	}
	return nil
}

// validateURL checks an endpoint URL and returns it parsed.
func validateURL(raw string) (*url.URL, error) {
	switch {
	case raw == "":
		return nil, errors.New("url: required")
	case raw == Redacted:
		return nil, errors.New("url: is the redaction placeholder and no URL is stored; send the real URL")
	case len(raw) > maxURLLen:
		return nil, fmt.Errorf("url: longer than %d characters", maxURLLen)
	case strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f || r > '~' }):
		return nil, errors.New("url: contains spaces, control or non-ASCII characters (percent-encode them)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("url: not a valid URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("url: must be https:// or http:// (got %q)", u.Scheme+":")
	}
	if u.Hostname() == "" {
		return nil, errors.New("url: has no host")
	}
	if u.Fragment != "" {
		return nil, errors.New("url: must not have a #fragment")
	}
	return u, nil
}

// Redact returns a copy of c with every secret replaced by Redacted: the
// URL of webhook, slack and discord channels (its path is the secret),
// every header value, the ntfy token and the SMTP password. Empty secrets
// stay empty, so a client can tell "not set" from "set". The ntfy topic URL
// is kept.
//
// Each Channel redacts its own secrets. Headers, token and password are
// secret wherever they appear, so they are redacted whatever the type: not
// even an invalid config shows them.
func (c Config) Redact() Config {
	out := c.clone()
	if ch, ok := lookupChannel(out.Type); ok {
		ch.Redact(&out)
	}
	redactHeaders(&out)
	redactString(&out.Token)
	redactString(&out.Password)
	return out
}

// redactString replaces a non-empty secret with Redacted.
func redactString(s *string) {
	if *s != "" {
		*s = Redacted
	}
}

// redactHeaders replaces every header value of c with Redacted.
func redactHeaders(c *Config) {
	for k := range c.Headers {
		c.Headers[k] = Redacted
	}
}

// KeepSecrets returns a copy of c in which every secret field equal to
// Redacted takes old's value: URL, Token, Password, and each header whose
// value is Redacted takes old's value for the same header name (compared
// case-insensitively). A Redacted value with nothing stored behind it stays
// Redacted, and Validate rejects it.
func (c Config) KeepSecrets(old Config) Config {
	out := c.clone()
	if out.URL == Redacted {
		out.URL = old.URL
	}
	if out.Token == Redacted {
		out.Token = old.Token
	}
	if out.Password == Redacted {
		out.Password = old.Password
	}
	for k, v := range out.Headers {
		if v != Redacted {
			continue
		}
		if ov, ok := lookupHeader(old.Headers, k); ok {
			out.Headers[k] = ov
		}
	}
	return out
}

// lookupHeader finds header k in h, exactly or case-insensitively.
func lookupHeader(h map[string]string, k string) (string, bool) {
	if v, ok := h[k]; ok {
		return v, true
	}
	canon := textproto.CanonicalMIMEHeaderKey(k)
	for hk, v := range h {
		if textproto.CanonicalMIMEHeaderKey(hk) == canon {
			return v, true
		}
	}
	return "", false
}

// clone copies c deeply (maps and slices are not shared).
func (c Config) clone() Config {
	out := c
	out.Headers = maps.Clone(c.Headers)
	out.Severities = slices.Clone(c.Severities)
	out.To = slices.Clone(c.To)
	return out
}
