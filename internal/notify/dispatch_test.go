package notify

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func counter(t *testing.T, reg *prometheus.Registry, name, typ, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["type"] == typ && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{type=%q,result=%q}", name, typ, result)
	return 0
}

func TestRetriesServerErrorsThenDelivers(t *testing.T) {
	rec := newRecorder(t, status(500, "boom"), status(502, ""), status(200, "ok"))
	d, reg, _ := testDispatcher(t, DispatcherOptions{})
	c := Config{ID: "n1", Name: "hook", Type: TypeWebhook, URL: rec.URL + "/x"}
	if err := send(t, d, c, sampleMessage(1, "m")); err != nil {
		t.Fatalf("not delivered: %v", err)
	}
	reqs := rec.all()
	if len(reqs) != 3 {
		t.Fatalf("%d attempts, want 3", len(reqs))
	}
	if string(reqs[0].Body) != string(reqs[2].Body) {
		t.Error("retries sent a different body")
	}
	st := d.Status("n1")
	if st.Sent != 1 || st.Failed != 0 || st.LastSuccess.IsZero() || st.LastError != "" {
		t.Errorf("status %+v", st)
	}
	if got := counter(t, reg, "sysmonstm_notification_attempts_total", "webhook", "failure"); got != 2 {
		t.Errorf("failed attempts %v", got)
	}
	if got := counter(t, reg, "sysmonstm_notification_attempts_total", "webhook", "success"); got != 1 {
		t.Errorf("successful attempts %v", got)
	}
	if got := counter(t, reg, "sysmonstm_notifications_total", "webhook", "success"); got != 1 {
		t.Errorf("delivered %v", got)
	}
	if got := counter(t, reg, "sysmonstm_notifications_total", "webhook", "failure"); got != 0 {
		t.Errorf("failed %v", got)
	}
	if n := testutil.CollectAndCount(reg, "sysmonstm_notification_duration_seconds"); n != len(Types()) {
		t.Errorf("%d duration series, want one per type", n)
	}
}

func TestRetryAfterHonored(t *testing.T) {
	rec := newRecorder(t, func(w http.ResponseWriter) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
	}, status(204, ""))
	d, _, _ := testDispatcher(t, DispatcherOptions{})
	c := Config{ID: "n1", Name: "slack", Type: TypeSlack, URL: rec.URL + "/services/x"}
	start := time.Now()
	if err := send(t, d, c, sampleMessage(1, "m")); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < time.Second {
		t.Errorf("retried after %v, server asked for 1s", el)
	}
	if n := len(rec.all()); n != 2 {
		t.Errorf("%d attempts", n)
	}
}

func TestClientErrorNotRetried(t *testing.T) {
	rec := newRecorder(t, status(400, "invalid_payload"))
	d, reg, logs := testDispatcher(t, DispatcherOptions{})
	c := Config{ID: "n1", Name: "slack", Type: TypeSlack, URL: rec.URL + "/services/T/B/SECRETPATH"}
	err := send(t, d, c, sampleMessage(1, "m"))
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != 400 || se.Body != "invalid_payload" {
		t.Fatalf("error %v, want a StatusError 400", err)
	}
	if !strings.Contains(err.Error(), "http 400") || !strings.Contains(err.Error(), `"slack"`) {
		t.Errorf("error text %q", err)
	}
	if n := len(rec.all()); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
	st := d.Status("n1")
	if st.Failed != 1 || st.LastError != err.Error() || st.LastErrorAt.IsZero() {
		t.Errorf("status %+v", st)
	}
	if got := counter(t, reg, "sysmonstm_notifications_total", "slack", "failure"); got != 1 {
		t.Errorf("failed %v", got)
	}
	if strings.Contains(logs.String(), "SECRETPATH") || strings.Contains(err.Error(), "SECRETPATH") {
		t.Error("URL secret in logs or error")
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	rec := newRecorder(t, status(503, "down"))
	d, _, _ := testDispatcher(t, DispatcherOptions{MaxAttempts: 3})
	c := Config{ID: "n1", Name: "hook", Type: TypeWebhook, URL: rec.URL + "/x"}
	err := send(t, d, c, sampleMessage(1, "m"))
	if err == nil || !strings.Contains(err.Error(), "gave up after 3 attempts") || !strings.Contains(err.Error(), "http 503") {
		t.Fatalf("error %v", err)
	}
	if n := len(rec.all()); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
}

func TestNetworkErrorRetriedWithoutLeakingURL(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens: connection refused
	d, reg, logs := testDispatcher(t, DispatcherOptions{MaxAttempts: 2})
	c := Config{ID: "n1", Name: "discord", Type: TypeDiscord, URL: "http://" + addr + "/api/webhooks/1/TOPSECRET"}
	err = send(t, d, c, sampleMessage(1, "m"))
	if err == nil {
		t.Fatal("delivered to nothing")
	}
	if got := counter(t, reg, "sysmonstm_notification_attempts_total", "discord", "failure"); got != 2 {
		t.Errorf("attempts %v, want 2 (network errors are retried)", got)
	}
	if strings.Contains(err.Error(), "TOPSECRET") || strings.Contains(logs.String(), "TOPSECRET") {
		t.Errorf("URL secret leaked: %v\n%s", err, logs)
	}
	if !strings.Contains(logs.String(), "notifier=discord") {
		t.Errorf("log does not name the notifier:\n%s", logs)
	}
}

func TestCancelStopsRetrying(t *testing.T) {
	rec := newRecorder(t, status(500, ""))
	d, _, _ := testDispatcher(t, DispatcherOptions{BaseBackoff: 10 * time.Second, MaxBackoff: 10 * time.Second})
	c := Config{ID: "n1", Name: "hook", Type: TypeWebhook, URL: rec.URL + "/x"}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for len(rec.all()) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	start := time.Now()
	err := d.Send(ctx, c, sampleMessage(1, "m"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Send returned after %v", el)
	}
	if n := len(rec.all()); n != 1 {
		t.Errorf("%d attempts", n)
	}
	if d.Status("n1").Failed != 1 {
		t.Errorf("status %+v", d.Status("n1"))
	}
}

func TestAttemptTimeout(t *testing.T) {
	block := make(chan struct{})
	rec := newRecorder(t, func(w http.ResponseWriter) { <-block })
	defer close(block)
	d, _, _ := testDispatcher(t, DispatcherOptions{MaxAttempts: 2, Timeout: 100 * time.Millisecond})
	c := Config{ID: "n1", Name: "hook", Type: TypeWebhook, URL: rec.URL + "/x"}
	err := send(t, d, c, sampleMessage(1, "m"))
	if err == nil || !strings.Contains(err.Error(), "no answer within 100ms") {
		t.Fatalf("error %v", err)
	}
	if n := len(rec.all()); n != 2 {
		t.Errorf("%d attempts, want 2 (timeouts are retried)", n)
	}
}

func TestInvalidConfigNotSent(t *testing.T) {
	d, reg, _ := testDispatcher(t, DispatcherOptions{})
	err := d.Send(context.Background(), Config{ID: "n1", Name: "x", Type: TypeWebhook, URL: "ftp://h/x"}, sampleMessage(1, "m"))
	if err == nil || !strings.Contains(err.Error(), "url: must be https:// or http://") {
		t.Fatalf("error %v", err)
	}
	if d.Status("n1").Failed != 1 {
		t.Errorf("status %+v", d.Status("n1"))
	}
	if got := counter(t, reg, "sysmonstm_notification_attempts_total", "webhook", "failure"); got != 0 {
		t.Errorf("attempted %v times", got)
	}
	d.Forget("n1")
	if d.Status("n1") != (Status{}) {
		t.Error("Forget kept the status")
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	target := newRecorder(t)
	rec := newRecorder(t, func(w http.ResponseWriter) {
		w.Header().Set("Location", target.URL+"/elsewhere")
		w.WriteHeader(http.StatusTemporaryRedirect)
	})
	d, _, _ := testDispatcher(t, DispatcherOptions{})
	err := send(t, d, Config{Name: "hook", Type: TypeWebhook, URL: rec.URL + "/x"}, sampleMessage(1, "m"))
	if err == nil || !strings.Contains(err.Error(), "redirect not followed") {
		t.Fatalf("error %v", err)
	}
	if len(target.all()) != 0 || len(rec.all()) != 1 {
		t.Error("redirect followed or retried")
	}
}

func TestBackoff(t *testing.T) {
	d, _, _ := testDispatcher(t, DispatcherOptions{BaseBackoff: time.Second, MaxBackoff: 30 * time.Second})
	transient := errors.New("dial: refused")
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 6: 30 * time.Second, 40: 30 * time.Second} {
		for range 20 {
			w, retry := d.backoff(attempt, transient)
			if !retry || w < want/2 || w > want {
				t.Fatalf("attempt %d: wait %v retry %v, want in [%v, %v]", attempt, w, retry, want/2, want)
			}
		}
	}
	if w, retry := d.backoff(1, &StatusError{StatusCode: 429, RetryAfter: 7 * time.Second}); !retry || w != 7*time.Second {
		t.Errorf("Retry-After: %v %v", w, retry)
	}
	if _, retry := d.backoff(1, &StatusError{StatusCode: 429, RetryAfter: time.Hour}); retry {
		t.Error("waits an hour")
	}
	if _, retry := d.backoff(1, &StatusError{StatusCode: 404}); retry {
		t.Error("retries 404")
	}
	if _, retry := d.backoff(1, &StatusError{StatusCode: 408}); !retry {
		t.Error("does not retry 408")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	f := func(in string, want time.Duration) {
		t.Helper()
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("%q: %v, want %v", in, got, want)
		}
	}
	f("", 0)
	f("3", 3*time.Second)
	f("-1", 0)
	f("abc", 0)
	f("99999999999", 24*time.Hour)
	f("Wed, 01 Jan 2025 00:00:30 GMT", 30*time.Second)
	f("Tue, 31 Dec 2024 00:00:00 GMT", 0)
}

func TestNewDispatcherRegistersOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewDispatcher(DispatcherOptions{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewDispatcher(DispatcherOptions{Registerer: reg}); err == nil {
		t.Error("second registration on one registry succeeded")
	}
	if _, err := NewDispatcher(DispatcherOptions{MaxAttempts: -1}); err == nil {
		t.Error("negative MaxAttempts accepted")
	}
}
