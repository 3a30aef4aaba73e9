package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// received is one notification a channel's server got.
type received struct {
	channel string
	body    string
	header  http.Header
}

// channelSink records what the Slack, Discord and ntfy endpoints and the
// SMTP server receive.
type channelSink struct {
	mu  sync.Mutex
	got []received
}

func (s *channelSink) add(r received) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, r)
}

func (s *channelSink) of(channel string) []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []received
	for _, r := range s.got {
		if r.channel == channel {
			out = append(out, r)
		}
	}
	return out
}

func (s *channelSink) httpServer(t *testing.T, channel string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.add(received{channel: channel, body: string(b), header: r.Header.Clone()})
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// smtpBackend is a go-smtp server backend recording each message's DATA.
type smtpBackend struct{ sink *channelSink }

func (b smtpBackend) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &smtpSession{sink: b.sink}, nil
}

type smtpSession struct {
	sink     *channelSink
	from, to string
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error { s.from = from; return nil }
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error   { s.to = to; return nil }
func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.sink.add(received{channel: "email", body: string(b), header: http.Header{"From": {s.from}, "To": {s.to}}})
	return nil
}
func (s *smtpSession) Reset()        {}
func (s *smtpSession) Logout() error { return nil }

// TestAlertChannelsEndToEnd: a real hub notifies Slack, Discord and ntfy
// endpoints (real HTTP servers in the test, checked in each service's
// format) and a real SMTP server (STARTTLS): two machines crossing the
// threshold together give ONE grouped firing message per channel, and their
// recovery one resolved message per channel.
func TestAlertChannelsEndToEnd(t *testing.T) {
	t.Parallel()
	const password = "e2e-channels-admin-pw"
	setEnv(t, "SYSMONSTM_ADMIN_PASSWORD", password)
	sink := &channelSink{}
	slack, discord, ntfy := sink.httpServer(t, "slack"), sink.httpServer(t, "discord"), sink.httpServer(t, "ntfy")

	_, certFile, keyFile, _ := writeTestPKI(t, t.TempDir())
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	mail := smtp.NewServer(smtpBackend{sink})
	mail.Domain = "localhost"
	mail.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	mail.ReadTimeout, mail.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = mail.Serve(ln) }()
	t.Cleanup(func() { mail.Close() })

	hub := startHub(t, t.TempDir(), "", "", "--alerts-group-wait", "500ms", "--alerts-repeat-interval", "0s")
	api := newAlertsClient(t, hub, password)
	var ids []string
	for _, n := range []map[string]any{
		{"name": "slack", "type": "slack", "url": slack.URL + "/services/T000/B000/XXXX"},
		{"name": "discord", "type": "discord", "url": discord.URL + "/api/webhooks/1/abc"},
		{"name": "ntfy", "type": "ntfy", "url": ntfy.URL + "/sysmonstm-alerts"},
		{"name": "mail", "type": "email", "smtp_host": "127.0.0.1", "smtp_port": ln.Addr().(*net.TCPAddr).Port,
			"from": "hub@example.com", "to": []string{"ops@example.com"}, "tls": "starttls", "insecure_skip_verify": true},
	} {
		var out struct {
			ID string `json:"id"`
		}
		api.must(201, "POST", "/api/notifiers", n, &out)
		ids = append(ids, out.ID)
	}
	api.must(201, "POST", "/api/rules", map[string]any{
		"name": "lab too hot", "metric": `e2e_temp_celsius{room="lab"}`, "op": ">", "threshold": 80, "clear": 70,
		"for": "1s", "severity": "critical", "notifiers": ids, "machines": []string{"lab-*"},
	}, nil)

	temps := &temperature{values: map[string]float64{"lab-1": 20, "lab-2": 20}}
	stop := make(chan struct{})
	defer close(stop)
	go temps.run(t, hub, stop)
	time.Sleep(time.Second)
	temps.set("lab-1", 95)
	temps.set("lab-2", 96)

	channels := []string{"slack", "discord", "ntfy", "email"}
	testutil.WaitFor(t, 20*time.Second, "a firing message on every channel", func() error {
		for _, c := range channels {
			if len(sink.of(c)) == 0 {
				return fmt.Errorf("nothing on %s yet", c)
			}
		}
		return nil
	})
	time.Sleep(2 * time.Second) // anything else would be a second, ungrouped message
	for _, c := range channels {
		got := sink.of(c)
		if len(got) != 1 {
			t.Fatalf("%s got %d messages, want 1 grouping both machines: %q", c, len(got), got)
		}
		// Discord's markdown escaping puts a backslash before "-" (JSON: \\).
		b := strings.ReplaceAll(got[0].body, `\\`, "")
		if !strings.Contains(b, "lab-1") || !strings.Contains(b, "lab-2") {
			t.Errorf("%s message lacks a machine: %s", c, truncate(b))
		}
	}
	var sl struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal([]byte(sink.of("slack")[0].body), &sl); err != nil || !strings.Contains(strings.ToUpper(sl.Text), "FIRING") {
		t.Errorf("slack payload: %v %s", err, truncate(sink.of("slack")[0].body))
	}
	var dc struct {
		Embeds          []struct{ Title string } `json:"embeds"`
		AllowedMentions struct {
			Parse []string `json:"parse"`
		} `json:"allowed_mentions"`
	}
	if err := json.Unmarshal([]byte(sink.of("discord")[0].body), &dc); err != nil || len(dc.Embeds) == 0 || dc.AllowedMentions.Parse == nil {
		t.Errorf("discord payload: %v %s", err, truncate(sink.of("discord")[0].body))
	}
	if h := sink.of("ntfy")[0].header; h.Get("Title") == "" || h.Get("Priority") != "5" {
		t.Errorf("ntfy headers: Title %q Priority %q", h.Get("Title"), h.Get("Priority"))
	}
	if m := sink.of("email")[0]; !strings.Contains(m.body, "Subject: ") || m.header.Get("To") != "ops@example.com" {
		t.Errorf("e-mail: to %q\n%s", m.header.Get("To"), truncate(m.body))
	}

	temps.set("lab-1", 40)
	temps.set("lab-2", 41)
	testutil.WaitFor(t, 20*time.Second, "a resolved message on every channel", func() error {
		for _, c := range channels {
			if len(sink.of(c)) < 2 {
				return fmt.Errorf("no resolved message on %s yet", c)
			}
		}
		return nil
	})
	time.Sleep(2 * time.Second)
	for _, c := range channels {
		got := sink.of(c)
		if len(got) != 2 {
			t.Fatalf("%s got %d messages, want firing + one grouped resolved", c, len(got))
		}
		if b := strings.ToLower(got[1].body + got[1].header.Get("Title")); !strings.Contains(b, "resolved") {
			t.Errorf("%s second message is not a resolution: %s", c, truncate(got[1].body))
		}
	}
}
