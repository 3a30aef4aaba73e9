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

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

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
