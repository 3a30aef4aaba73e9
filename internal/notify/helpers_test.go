package notify

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// hostile is an agent-provided string built to break markup, headers and
// limits: mentions, markdown, HTML, CR/LF, invalid UTF-8, bidi override.
const hostile = "<!channel> @everyone **bold** <script>alert(1)</script> [x](https://evil.example) `code` |spoiler| \r\nX-Injected: 1\n\xff\xfe \u202egnp.exe"

// longHostile is hostile repeated past 10 KB.
var longHostile = strings.Repeat(hostile, 10*1024/len(hostile)+1)

// recorded is one request a recorder received.
type recorded struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// recorder is a real HTTP server that records requests and answers each
// with the next of its scripted responses (the last one repeats).
type recorder struct {
	*httptest.Server
	mu        sync.Mutex
	requests  []recorded
	responses []func(w http.ResponseWriter)
}

func newRecorder(t *testing.T, responses ...func(w http.ResponseWriter)) *recorder {
	t.Helper()
	rec := &recorder{responses: responses}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.requests = append(rec.requests, recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
		n := len(rec.requests)
		var respond func(w http.ResponseWriter)
		if len(rec.responses) > 0 {
			respond = rec.responses[min(n, len(rec.responses))-1]
		}
		rec.mu.Unlock()
		if respond == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		respond(w)
	}))
	t.Cleanup(rec.Close)
	return rec
}

func (r *recorder) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.requests...)
}

func (r *recorder) last(t *testing.T) recorded {
	t.Helper()
	all := r.all()
	if len(all) == 0 {
		t.Fatal("no request received")
	}
	return all[len(all)-1]
}

// status answers with code and body.
func status(code int, body string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

// testDispatcher is a dispatcher with short backoffs, its own registry and
// a log buffer.
func testDispatcher(t *testing.T, o DispatcherOptions) (*Dispatcher, *prometheus.Registry, *bytes.Buffer) {
	t.Helper()
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	o.Registerer = reg
	o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if o.BaseBackoff == 0 {
		o.BaseBackoff = time.Millisecond
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 5 * time.Millisecond
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	d, err := NewDispatcher(o)
	if err != nil {
		t.Fatal(err)
	}
	return d, reg, &logs
}

// sampleMessage is a firing message with n alerts on machine name.
func sampleMessage(n int, machine string) Message {
	started := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	m := Message{Status: StatusFiring, Title: "[FIRING] cpu high on " + machine, URL: "https://hub.example/alerts"}
	for i := range n {
		sev := "warning"
		if i%2 == 0 {
			sev = "critical"
		}
		m.Alerts = append(m.Alerts, Alert{
			ID: "a" + string(rune('0'+i%10)), RuleID: "r1", RuleName: "cpu high", Machine: machine,
			Metric: "cpu_usage_percent", Labels: map[string]string{"cpu": "total", "unit": machine},
			Severity: sev, State: StatusFiring, Value: 97.25, Threshold: 90, Op: ">",
			Description: "CPU on " + machine + " above 90%", StartedAt: started,
		})
	}
	return m
}

func send(t *testing.T, d *Dispatcher, c Config, m Message) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return d.Send(ctx, c, m)
}
