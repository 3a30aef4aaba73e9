package notify

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// selfSigned returns a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smtp test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// mailbox is a go-smtp backend that records what clients do.
type mailbox struct {
	mechs    []string // offered AUTH mechanisms
	user     string
	password string

	mu       sync.Mutex
	sessions int
	auths    []string // usernames tried, with "+tls" or "+plain"
	messages []received
}

type received struct {
	from string
	to   []string
	data []byte
	tls  bool
}

func (b *mailbox) NewSession(c *smtp.Conn) (smtp.Session, error) {
	b.mu.Lock()
	b.sessions++
	b.mu.Unlock()
	_, isTLS := c.TLSConnectionState()
	return &mailSession{box: b, tls: isTLS}, nil
}

func (b *mailbox) snapshot() (int, []string, []received) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sessions, append([]string(nil), b.auths...), append([]received(nil), b.messages...)
}

type mailSession struct {
	box *mailbox
	tls bool
	cur received
}

func (s *mailSession) AuthMechanisms() []string { return s.box.mechs }

func (s *mailSession) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		s.box.mu.Lock()
		mode := "+plain"
		if s.tls {
			mode = "+tls"
		}
		s.box.auths = append(s.box.auths, user+mode)
		s.box.mu.Unlock()
		if user != s.box.user || pass != s.box.password {
			return smtp.ErrAuthFailed
		}
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	s.cur = received{from: from, tls: s.tls}
	return nil
}

func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.to = append(s.cur.to, to)
	return nil
}

func (s *mailSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = data
	s.box.mu.Lock()
	s.box.messages = append(s.box.messages, s.cur)
	s.box.mu.Unlock()
	return nil
}

func (s *mailSession) Reset()        { s.cur = received{} }
func (s *mailSession) Logout() error { return nil }

// loginServer is the server side of SASL LOGIN (username, then password,
// each after a prompt).
type loginServer struct {
	check    func(user, pass string) error
	step     int
	username string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	l.step++
	switch l.step {
	case 1:
		if resp != nil {
			l.username = string(resp)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 2:
		l.username = string(resp)
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.username, string(resp))
	}
}

// smtpServer starts a real go-smtp server on 127.0.0.1. mode is
// "starttls" (TLS offered via STARTTLS), "tls" (implicit TLS) or "plain"
// (no TLS at all, AUTH offered anyway).
func smtpServer(t *testing.T, mode string, box *mailbox) (port int, pool *x509.CertPool) {
	t.Helper()
	cert, pool := selfSigned(t)
	srv := smtp.NewServer(box)
	srv.Domain = "localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.ErrorLog = nopLogger{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsConf := &tls.Config{Certificates: []tls.Certificate{cert}}
	switch mode {
	case "starttls":
		srv.TLSConfig = tlsConf
	case "tls":
		l = tls.NewListener(l, tlsConf)
	case "plain":
		srv.AllowInsecureAuth = true
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port, pool
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

func emailConfig(port int) Config {
	return Config{
		ID: "e1", Name: "ops mail", Type: TypeEmail,
		SMTPHost: "127.0.0.1", SMTPPort: port,
		Username: "alice", Password: "s3cret",
		From: "sysmonstm <alerts@example.com>",
		To:   []string{"ops@example.com", "Bob Ü <bob@example.com>"},
	}
}

func TestEmailStartTLSAuthPlain(t *testing.T) {
	box := &mailbox{mechs: []string{sasl.Plain}, user: "alice", password: "s3cret"}
	port, pool := smtpServer(t, "starttls", box)
	d, _, _ := testDispatcher(t, DispatcherOptions{RootCAs: pool})
	m := sampleMessage(2, hostile)
	m.Title = "[FIRING:2] CPU hoch auf Müller-PC\r\nBcc: victim@example.com"
	if err := send(t, d, emailConfig(port), m); err != nil {
		t.Fatal(err)
	}
	_, auths, msgs := box.snapshot()
	if len(auths) != 1 || auths[0] != "alice+tls" {
		t.Errorf("auth attempts %v, want alice over TLS", auths)
	}
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	got := msgs[0]
	if !got.tls || got.from != "alerts@example.com" || strings.Join(got.to, ",") != "ops@example.com,bob@example.com" {
		t.Errorf("envelope %+v", got)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(got.data))
	if err != nil {
		t.Fatalf("unparsable message: %v\n%s", err, got.data)
	}
	h := msg.Header
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(h.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	if subject != "[FIRING:2] CPU hoch auf Müller-PC  Bcc: victim@example.com" {
		t.Errorf("Subject %q", subject)
	}
	if h.Get("Bcc") != "" {
		t.Error("header injection through the title")
	}
	if from, err := h.AddressList("From"); err != nil || len(from) != 1 || from[0].Address != "alerts@example.com" || from[0].Name != "sysmonstm" {
		t.Errorf("From %v %v", from, err)
	}
	if to, err := h.AddressList("To"); err != nil || len(to) != 2 || to[1].Name != "Bob Ü" {
		t.Errorf("To %v %v", to, err)
	}
	if date, err := h.Date(); err != nil || time.Since(date) > time.Minute {
		t.Errorf("Date %q %v", h.Get("Date"), err)
	}
	if id := h.Get("Message-Id"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@example.com>") {
		t.Errorf("Message-ID %q", id)
	}
	if h.Get("Content-Type") != "text/plain; charset=utf-8" || h.Get("Content-Transfer-Encoding") != "quoted-printable" || h.Get("Mime-Version") != "1.0" {
		t.Errorf("MIME headers %v", h)
	}
	for _, line := range strings.Split(string(got.data), "\r\n") {
		if len(line) > 998 {
			t.Errorf("line of %d bytes", len(line))
		}
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	text := string(body)
	for _, want := range []string{"2 firing", "CRITICAL firing: cpu high", "machine: <!channel> @everyone", "cpu_usage_percent{cpu=total", "= 97.25 (> 90)", "since 2025-03-01T10:00:00Z", "https://hub.example/alerts"} {
		if !strings.Contains(text, want) {
			t.Errorf("body lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "\u202e") {
		t.Error("body has a bidi override")
	}
	if st := d.Status("e1"); st.Sent != 1 {
		t.Errorf("status %+v", st)
	}
}

func TestEmailImplicitTLSAuthLogin(t *testing.T) {
	box := &mailbox{mechs: []string{sasl.Login}, user: "alice", password: "s3cret"}
	port, pool := smtpServer(t, "tls", box)
	d, _, _ := testDispatcher(t, DispatcherOptions{RootCAs: pool})
	c := emailConfig(port)
	c.TLS = TLSImplicit
	if err := send(t, d, c, sampleMessage(1, "web-1")); err != nil {
		t.Fatal(err)
	}
	_, auths, msgs := box.snapshot()
	if len(msgs) != 1 || !msgs[0].tls || len(auths) != 1 || auths[0] != "alice+tls" {
		t.Errorf("auths %v messages %d", auths, len(msgs))
	}
}

func TestEmailWithoutStartTLSRefused(t *testing.T) {
	box := &mailbox{mechs: []string{sasl.Plain}, user: "alice", password: "s3cret"}
	port, _ := smtpServer(t, "plain", box)
	d, _, _ := testDispatcher(t, DispatcherOptions{})
	err := send(t, d, emailConfig(port), sampleMessage(1, "m"))
	if err == nil || !strings.Contains(err.Error(), "does not offer STARTTLS") {
		t.Fatalf("error %v", err)
	}
	sessions, auths, msgs := box.snapshot()
	if len(auths) != 0 || len(msgs) != 0 {
		t.Errorf("credentials or mail sent in clear: auths %v, messages %d", auths, len(msgs))
	}
	if sessions != 1 {
		t.Errorf("%d connections, want 1 (not retried)", sessions)
	}
}

func TestEmailWrongPassword(t *testing.T) {
	box := &mailbox{mechs: []string{sasl.Plain}, user: "alice", password: "right"}
	port, pool := smtpServer(t, "starttls", box)
	d, _, logs := testDispatcher(t, DispatcherOptions{RootCAs: pool})
	c := emailConfig(port)
	c.Password = "wrong-pass-123"
	err := send(t, d, c, sampleMessage(1, "m"))
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 535 {
		t.Fatalf("error %v, want SMTP 535", err)
	}
	sessions, auths, msgs := box.snapshot()
	// One connection: a session before STARTTLS and one after it.
	if len(msgs) != 0 || len(auths) != 1 || sessions != 2 {
		t.Errorf("sessions %d auths %v messages %d (auth failures are not retried)", sessions, auths, len(msgs))
	}
	if strings.Contains(err.Error(), "wrong-pass-123") || strings.Contains(logs.String(), "wrong-pass-123") {
		t.Error("password in error or logs")
	}
}

func TestEmailCertificateVerified(t *testing.T) {
	box := &mailbox{mechs: []string{sasl.Plain}, user: "alice", password: "s3cret"}
	port, _ := smtpServer(t, "starttls", box)
	d, _, _ := testDispatcher(t, DispatcherOptions{}) // system roots: the test CA is unknown
	err := send(t, d, emailConfig(port), sampleMessage(1, "m"))
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("self-signed certificate accepted: %v", err)
	}
	sessions, auths, _ := box.snapshot()
	if len(auths) != 0 || sessions != 1 {
		t.Errorf("sessions %d auths %v, want 1 and none", sessions, auths)
	}
	c := emailConfig(port)
	c.InsecureSkipVerify = true
	if err := send(t, d, c, sampleMessage(1, "m")); err != nil {
		t.Fatalf("insecure_skip_verify: %v", err)
	}
}

func TestEmailPlaintextLoopbackRelay(t *testing.T) {
	box := &mailbox{}
	port, _ := smtpServer(t, "plain", box)
	d, _, _ := testDispatcher(t, DispatcherOptions{})
	c := emailConfig(port)
	c.TLS, c.Username, c.Password = TLSNone, "", ""
	if err := send(t, d, c, sampleMessage(1, "m")); err != nil {
		t.Fatal(err)
	}
	if _, _, msgs := box.snapshot(); len(msgs) != 1 || msgs[0].tls {
		t.Errorf("messages %+v", msgs)
	}
}

func TestEmailManyAlertsAndLongSubject(t *testing.T) {
	c := emailConfig(25)
	m := sampleMessage(2000, longHostile)
	m.Title = strings.Repeat("Überlast ", 100)
	msg, err := formatEmail(c, m, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.data) > 2*emailBodyLimit {
		t.Errorf("message %d bytes", len(msg.data))
	}
	parsed, err := mail.ReadMessage(bytes.NewReader(msg.data))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(parsed.Header.Get("Subject"))
	if err != nil || !strings.HasPrefix(subject, "Überlast Überlast") || !strings.HasSuffix(subject, ellipsis) {
		t.Errorf("Subject %q %v", subject, err)
	}
	for _, line := range strings.Split(string(msg.data), "\r\n") {
		if len(line) > 998 {
			t.Fatalf("line of %d bytes", len(line))
		}
	}
	body, _ := io.ReadAll(quotedprintable.NewReader(parsed.Body))
	if !strings.Contains(string(body), "more alerts") {
		t.Error("no summary of the alerts left out")
	}
}

func TestSMTPPortDefaults(t *testing.T) {
	for tlsMode, want := range map[string]int{"": 587, TLSStartTLS: 587, TLSImplicit: 465, TLSNone: 25} {
		if got := (Config{TLS: tlsMode}).smtpPort(); got != want {
			t.Errorf("tls %q: port %d, want %d", tlsMode, got, want)
		}
	}
}
