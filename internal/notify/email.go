package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// TypeEmail sends e-mail over SMTP.
const TypeEmail = "email"

// SMTP TLS modes.
const (
	TLSStartTLS = "starttls"
	TLSImplicit = "tls"
	TLSNone     = "none"
)

// Limits on e-mail settings.
const (
	maxRecipients    = 50
	maxAddressLen    = 254
	maxCredentialLen = 512
)

// emailChannel is the Channel of TypeEmail.
type emailChannel struct{}

// Validate checks the SMTP server, credentials and addresses; url,
// headers and token are refused.
func (emailChannel) Validate(c Config) error {
	if c.URL != "" {
		return errors.New("url: not used by type email (set smtp_host)")
	}
	if err := refuseHeaders(c); err != nil {
		return err
	}
	if err := refuseToken(c); err != nil {
		return err
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

// Redact hides the SMTP password.
func (emailChannel) Redact(c *Config) { redactString(&c.Password) }

// Form: the SMTP relay, its TLS mode and credentials, sender and
// recipients.
func (emailChannel) Form() Form {
	return Form{Label: "E-mail (SMTP)", Fields: []Field{
		{Name: "smtp_host", Label: "SMTP host", Kind: KindText, Required: true, Placeholder: "smtp.example.com"},
		{Name: "smtp_port", Label: "SMTP port", Kind: KindNumber, Required: true, Default: 587, Min: 1, Max: 65535},
		{Name: "tls", Label: "TLS", Kind: KindChoice, Required: true, Default: TLSStartTLS, Options: []Option{
			{TLSStartTLS, "STARTTLS (required)"}, {TLSImplicit, "implicit TLS (port 465)"}, {TLSNone, "none (loopback relay only)"},
		}},
		{Name: "username", Label: "Username", Kind: KindText, Help: "optional"},
		{Name: "password", Label: "Password", Kind: KindSecret, Redacted: true},
		{Name: "from", Label: "From", Kind: KindText, Required: true, Placeholder: "sysmonstm@example.com"},
		{Name: "to", Label: "To", Kind: KindList, Required: true, Help: "comma separated", Placeholder: "ops@example.com, oncall@example.com"},
		{Name: "insecure_skip_verify", Label: "skip certificate verification (self-signed relay)", Kind: KindBool},
	}}
}

// Format builds the message, dated now.
func (emailChannel) Format(c Config, m Message, now time.Time) (Payload, error) {
	msg, err := formatEmail(c, m, now)
	if err != nil {
		return nil, err
	}
	return msg, nil
}

// Send delivers the message over SMTP once.
func (msg mailMessage) Send(ctx context.Context, d *Dispatcher, c Config) error {
	return d.sendMail(ctx, c, msg)
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

// Limits of an e-mail notification.
const (
	emailSubjectLimit = 200       // runes
	emailBodyLimit    = 256 << 10 // bytes before quoted-printable encoding
)

// mailMessage is a formatted e-mail: envelope and RFC 5322 bytes.
type mailMessage struct {
	from string   // envelope sender address
	to   []string // envelope recipient addresses
	data []byte   // CRLF lines
}

// formatEmail builds the message: From, To, Subject (RFC 2047 when not
// ASCII), Date, Message-ID, a quoted-printable UTF-8 text/plain body
// listing the alerts.
func formatEmail(c Config, m Message, now time.Time) (mailMessage, error) {
	from, err := mail.ParseAddress(c.From)
	if err != nil {
		return mailMessage{}, fmt.Errorf("from: %w", err)
	}
	msg := mailMessage{from: from.Address}
	var toHeader []string
	for _, t := range c.To {
		a, err := mail.ParseAddress(t)
		if err != nil {
			return mailMessage{}, fmt.Errorf("to: %w", err)
		}
		msg.to = append(msg.to, a.Address)
		toHeader = append(toHeader, a.String())
	}
	subject := title(m, emailSubjectLimit)

	var body bytes.Buffer
	qp := quotedprintable.NewWriter(&body)
	text := subject + "\n\n" + plainBody(m, emailBodyLimit) + "\n\n-- \nsysmonstm\n"
	if _, err := qp.Write([]byte(text)); err != nil {
		return mailMessage{}, err
	}
	if err := qp.Close(); err != nil {
		return mailMessage{}, err
	}

	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", from.String())
	header("To", strings.Join(toHeader, ",\r\n "))
	header("Subject", encodeHeader(subject))
	header("Date", now.Format(time.RFC1123Z))
	header("Message-ID", messageID(from.Address, now))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	header("Auto-Submitted", "auto-generated")
	header("X-Sysmonstm-Status", statusWord(m))
	b.WriteString("\r\n")
	b.Write(body.Bytes())
	msg.data = b.Bytes()
	return msg, nil
}

// encodeHeader encodes one-line text (no control characters) for a mail
// header: ASCII as is, otherwise RFC 2047 Q-encoded words folded one per
// line.
func encodeHeader(s string) string {
	enc := mime.QEncoding.Encode("utf-8", s)
	return strings.ReplaceAll(enc, "?= =?", "?=\r\n =?")
}

// messageID is a unique Message-ID in the sender's domain.
func messageID(from string, now time.Time) string {
	domain := "sysmonstm.invalid"
	if i := strings.LastIndexByte(from, '@'); i >= 0 && i+1 < len(from) {
		domain = from[i+1:]
	}
	var r [12]byte
	_, _ = rand.Read(r[:])
	return "<" + strconv.FormatInt(now.UnixNano(), 36) + "." + hex.EncodeToString(r[:]) + "@" + domain + ">"
}

// sendMail delivers msg over SMTP: one attempt. TLS is required unless
// c.TLS is "none" (loopback only), and credentials are only ever sent over
// TLS.
func (d *Dispatcher) sendMail(ctx context.Context, c Config, msg mailMessage) error {
	addr := net.JoinHostPort(c.SMTPHost, strconv.Itoa(c.smtpPort()))
	tlsConf := &tls.Config{
		ServerName:         c.SMTPHost,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // the operator's explicit choice for self-signed relays
		RootCAs:            d.rootCAs,
		MinVersion:         tls.VersionTLS12,
	}
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	// Closing the connection is what ends a blocked SMTP exchange when
	// ctx is done (the client's own deadlines are per command).
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()

	var client *smtp.Client
	switch c.TLS {
	case TLSImplicit:
		tc := tls.Client(conn, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("tls handshake with %s: %w", addr, err)
		}
		client = smtp.NewClient(tc)
	case TLSNone:
		client = smtp.NewClient(conn)
	default:
		client, err = smtp.NewClientStartTLS(conn, tlsConf)
		if err != nil {
			// go-smtp reports a missing STARTTLS extension with this text.
			if strings.Contains(err.Error(), "doesn't support STARTTLS") {
				return permanent(fmt.Errorf("smtp server %s does not offer STARTTLS; refusing to send without TLS (use tls \"tls\" for implicit TLS on port 465)", addr))
			}
			return smtpErr(fmt.Sprintf("starttls with %s", addr), err)
		}
	}
	client.CommandTimeout = d.timeout
	client.SubmissionTimeout = d.timeout
	defer client.Close()
	if err := client.Hello(localName()); err != nil {
		return smtpErr("ehlo", err)
	}
	if c.Username != "" {
		if _, ok := client.TLSConnectionState(); !ok {
			return permanent(errors.New("refusing to send smtp credentials without TLS"))
		}
		var auth sasl.Client
		switch {
		case client.SupportsAuth(sasl.Plain):
			auth = sasl.NewPlainClient("", c.Username, c.Password)
		case client.SupportsAuth(sasl.Login):
			auth = sasl.NewLoginClient(c.Username, c.Password)
		default:
			return permanent(fmt.Errorf("smtp server %s offers neither AUTH PLAIN nor AUTH LOGIN", addr))
		}
		if err := client.Auth(auth); err != nil {
			return smtpErr(fmt.Sprintf("smtp auth as %q", c.Username), err)
		}
	}
	if err := client.SendMail(msg.from, msg.to, bytes.NewReader(msg.data)); err != nil {
		return smtpErr("send", err)
	}
	if err := client.Quit(); err != nil {
		// The message was accepted at the end of DATA.
		d.log.Debug("smtp quit failed", "err", err)
	}
	return nil
}

// smtpErr wraps an SMTP error with context; 5xx replies are permanent,
// 4xx and network errors transient.
func smtpErr(op string, err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code >= 500 {
		return permanent(fmt.Errorf("%s: %w", op, err))
	}
	return fmt.Errorf("%s: %w", op, err)
}

// localName is the name the hub greets SMTP servers with.
func localName() string {
	h, err := os.Hostname()
	if err != nil || h == "" || strings.ContainsAny(h, " \r\n") {
		return "localhost"
	}
	return h
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
