package notify

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/mail"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// Limits on configuration values.
const (
	maxNameLen       = 100
	maxIDLen         = 64
	maxURLLen        = 2048
	maxHeaders       = 20
	maxHeaderNameLen = 100
	maxHeaderValLen  = 4096
	maxTokenLen      = 512
	maxRecipients    = 50
	maxAddressLen    = 254
	maxCredentialLen = 512
)

// SMTP TLS modes.
const (
	TLSStartTLS = "starttls"
	TLSImplicit = "tls"
	TLSNone     = "none"
)

// Types returns the channel types in the order the UI offers them.
func Types() []string {
	return []string{TypeWebhook, TypeSlack, TypeDiscord, TypeNtfy, TypeEmail}
}

// forbiddenHeaders are headers a webhook config may not set: the transport
// owns them, and the body is always JSON.
var forbiddenHeaders = []string{"Host", "Content-Length", "Content-Type", "Transfer-Encoding", "Connection", "Te", "Trailer", "Upgrade", "Expect"}

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
	if !slices.Contains(Types(), c.Type) {
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
	if c.Type == TypeEmail {
		return c.validateEmail()
	}
	return c.validateHTTP()
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

// validateHTTP checks the fields of webhook, slack, discord and ntfy.
func (c Config) validateHTTP() error {
	if err := validateURL(c.URL, c.Type); err != nil {
		return err
	}
	if len(c.Headers) > 0 && c.Type != TypeWebhook {
		return fmt.Errorf("headers: only for type webhook, not %s", c.Type)
	}
	if len(c.Headers) > maxHeaders {
		return fmt.Errorf("headers: more than %d", maxHeaders)
	}
	for _, k := range slices.Sorted(maps.Keys(c.Headers)) {
		if err := validateHeader(k, c.Headers[k]); err != nil {
			return err
		}
	}
	if c.Token != "" {
		if c.Type != TypeNtfy {
			return fmt.Errorf("token: only for type ntfy, not %s", c.Type)
		}
		if c.Token == Redacted {
			return errors.New("token: is the redaction placeholder and no token is stored; send the real token")
		}
		if len(c.Token) > maxTokenLen {
			return fmt.Errorf("token: longer than %d characters", maxTokenLen)
		}
		for _, r := range c.Token {
			if r <= ' ' || r > '~' {
				return errors.New("token: must be printable ASCII without spaces")
			}
		}
	}
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

// validateURL checks an endpoint URL for channel type typ.
func validateURL(raw, typ string) error {
	switch {
	case raw == "":
		return errors.New("url: required")
	case raw == Redacted:
		return errors.New("url: is the redaction placeholder and no URL is stored; send the real URL")
	case len(raw) > maxURLLen:
		return fmt.Errorf("url: longer than %d characters", maxURLLen)
	case strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f || r > '~' }):
		return errors.New("url: contains spaces, control or non-ASCII characters (percent-encode them)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("url: not a valid URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("url: must be https:// or http:// (got %q)", u.Scheme+":")
	}
	if u.Hostname() == "" {
		return errors.New("url: has no host")
	}
	if u.Fragment != "" {
		return errors.New("url: must not have a #fragment")
	}
	if typ == TypeNtfy && strings.Trim(u.Path, "/") == "" {
		return errors.New("url: needs the topic in the path, e.g. https://ntfy.sh/mytopic")
	}
	if (typ == TypeSlack || typ == TypeDiscord) && strings.Trim(u.Path, "/") == "" {
		return fmt.Errorf("url: needs the full %s webhook URL including its path", typ)
	}
	return nil
}

// validateHeader checks one extra webhook header.
func validateHeader(k, v string) error {
	if k == "" || len(k) > maxHeaderNameLen {
		return fmt.Errorf("headers: name %q must be 1 to %d characters", k, maxHeaderNameLen)
	}
	for _, r := range k {
		if !isTokenRune(r) {
			return fmt.Errorf("headers: name %q is not a valid HTTP header name", k)
		}
	}
	canon := textproto.CanonicalMIMEHeaderKey(k)
	if slices.Contains(forbiddenHeaders, canon) {
		return fmt.Errorf("headers[%s]: may not be set (the sender owns it)", canon)
	}
	if v == Redacted {
		return fmt.Errorf("headers[%s]: is the redaction placeholder and no value is stored for it; send the real value", canon)
	}
	if len(v) > maxHeaderValLen {
		return fmt.Errorf("headers[%s]: value longer than %d bytes", canon, maxHeaderValLen)
	}
	for _, r := range v {
		if r < ' ' && r != '\t' || r == 0x7f || r > '~' {
			return fmt.Errorf("headers[%s]: value must be printable ASCII (no CR, LF or control characters)", canon)
		}
	}
	return nil
}

// isTokenRune reports whether r may appear in an HTTP header name (RFC 9110
// token).
func isTokenRune(r rune) bool {
	if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
		return true
	}
	return strings.ContainsRune("!#$%&'*+-.^_`|~", r)
}

// validateEmail checks the fields of type email.
func (c Config) validateEmail() error {
	switch {
	case c.URL != "":
		return errors.New("url: not used by type email (set smtp_host)")
	case len(c.Headers) > 0:
		return errors.New("headers: only for type webhook, not email")
	case c.Token != "":
		return errors.New("token: only for type ntfy, not email")
	}
	if err := validateSMTPHost(c.SMTPHost); err != nil {
		return err
	}
	if c.SMTPPort < 0 || c.SMTPPort > 65535 {
		return fmt.Errorf("smtp_port: %d out of range 1-65535 (0 picks the default for tls)", c.SMTPPort)
	}
	switch c.TLS {
	case "", TLSStartTLS, TLSImplicit:
	case TLSNone:
		if !isLoopbackHost(c.SMTPHost) {
			return fmt.Errorf("tls: \"none\" (plaintext) is only allowed for a relay on loopback, not %q; use starttls or tls", c.SMTPHost)
		}
		if c.Username != "" {
			return errors.New("username: credentials are never sent without TLS; use tls starttls or tls, or drop username")
		}
	default:
		return fmt.Errorf("tls: unknown %q (want starttls, tls or none)", c.TLS)
	}
	if c.InsecureSkipVerify && c.TLS == TLSNone {
		return errors.New("insecure_skip_verify: has no effect with tls none")
	}
	if err := validateCredential("username", c.Username); err != nil {
		return err
	}
	if err := validateCredential("password", c.Password); err != nil {
		return err
	}
	switch {
	case c.Password == Redacted:
		return errors.New("password: is the redaction placeholder and no password is stored; send the real password")
	case c.Username != "" && c.Password == "":
		return errors.New("password: required with username")
	case c.Username == "" && c.Password != "":
		return errors.New("username: required with password")
	}
	if c.From == "" {
		return errors.New("from: required (the sender address, e.g. sysmonstm@example.com)")
	}
	if err := validateAddress("from", c.From); err != nil {
		return err
	}
	if len(c.To) == 0 {
		return errors.New("to: at least one address")
	}
	if len(c.To) > maxRecipients {
		return fmt.Errorf("to: more than %d addresses", maxRecipients)
	}
	for i, to := range c.To {
		if err := validateAddress(fmt.Sprintf("to[%d]", i), to); err != nil {
			return err
		}
	}
	return nil
}

func validateSMTPHost(h string) error {
	switch {
	case h == "":
		return errors.New("smtp_host: required")
	case len(h) > 253:
		return errors.New("smtp_host: longer than 253 characters")
	case net.ParseIP(h) != nil:
		return nil
	case strings.Contains(h, "://"):
		return fmt.Errorf("smtp_host: must be a host name or IP address, not a URL (got %q)", h)
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("smtp_host: %q is not a valid host name (put the port in smtp_port)", h)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("smtp_host: %q is not a valid host name (put the port in smtp_port)", h)
			}
		}
	}
	return nil
}

// isLoopbackHost reports whether h names this machine's loopback interface.
func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func validateCredential(field, v string) error {
	if len(v) > maxCredentialLen {
		return fmt.Errorf("%s: longer than %d characters", field, maxCredentialLen)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s: not valid UTF-8", field)
	}
	if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return fmt.Errorf("%s: contains control characters", field)
	}
	return nil
}

// validateAddress checks one e-mail address ("a@b.c" or "Name <a@b.c>").
func validateAddress(field, s string) error {
	if len(s) > maxAddressLen+200 {
		return fmt.Errorf("%s: longer than %d characters", field, maxAddressLen+200)
	}
	if strings.ContainsAny(s, "\r\n") {
		return fmt.Errorf("%s: contains a line break", field)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return fmt.Errorf("%s: %q is not an e-mail address", field, s)
	}
	if len(a.Address) > maxAddressLen {
		return fmt.Errorf("%s: address longer than %d characters", field, maxAddressLen)
	}
	if !strings.Contains(a.Address, "@") {
		return fmt.Errorf("%s: %q has no @domain", field, s)
	}
	for i := 0; i < len(a.Address); i++ {
		if a.Address[i] >= 0x80 {
			return fmt.Errorf("%s: address %q must be ASCII (internationalized addresses are not supported)", field, a.Address)
		}
	}
	return nil
}

// hasSecretURL reports whether the channel type's URL carries a secret in
// its path (webhook, Slack and Discord URLs do; an ntfy topic URL is shown).
func hasSecretURL(typ string) bool {
	return typ == TypeWebhook || typ == TypeSlack || typ == TypeDiscord
}

// Redact returns a copy of c with every secret replaced by Redacted: the
// URL of webhook, slack and discord channels (its path is the secret),
// every header value, the ntfy token and the SMTP password. Empty secrets
// stay empty, so a client can tell "not set" from "set". The ntfy topic URL
// is kept.
func (c Config) Redact() Config {
	out := c.clone()
	if out.URL != "" && hasSecretURL(out.Type) {
		out.URL = Redacted
	}
	for k := range out.Headers {
		out.Headers[k] = Redacted
	}
	if out.Token != "" {
		out.Token = Redacted
	}
	if out.Password != "" {
		out.Password = Redacted
	}
	return out
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

// smtpPort is the configured port, or the default for the TLS mode.
func (c Config) smtpPort() int {
	if c.SMTPPort != 0 {
		return c.SMTPPort
	}
	switch c.TLS {
	case TLSImplicit:
		return 465
	case TLSNone:
		return 25
	}
	return 587
}
