package notify

import (
	"mime"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNtfyRequest(t *testing.T) {
	rec := newRecorder(t, status(200, `{"id":"x"}`))
	d, _, _ := testDispatcher(t, DispatcherOptions{})
	c := Config{ID: "t", Name: "phone", Type: TypeNtfy, URL: rec.URL + "/alerts-topic", Token: "tk_secret"}
	m := sampleMessage(2, hostile)
	m.Title = "CPU hoch auf Müller-PC " + hostile
	if err := send(t, d, c, m); err != nil {
		t.Fatal(err)
	}
	r := rec.last(t)
	if r.Method != "POST" || r.Path != "/alerts-topic" {
		t.Errorf("request %s %s", r.Method, r.Path)
	}
	want := map[string]string{"Priority": "5", "Tags": "rotating_light", "Authorization": "Bearer tk_secret", "Click": "https://hub.example/alerts"}
	for k, v := range want {
		if got := r.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	rawTitle := r.Header.Get("Title")
	for _, c := range rawTitle {
		if c < ' ' || c > '~' {
			t.Fatalf("Title header has %q: %q", c, rawTitle)
		}
	}
	title, err := new(mime.WordDecoder).DecodeHeader(rawTitle)
	if err != nil {
		t.Fatalf("Title %q: %v", rawTitle, err)
	}
	if !strings.HasPrefix(title, "CPU hoch auf Müller-PC <!channel>") || strings.ContainsAny(title, "\r\n\u202e") {
		t.Errorf("Title decodes to %q", title)
	}
	body := string(r.Body)
	if !utf8.ValidString(body) || !strings.Contains(body, "2 firing") || !strings.Contains(body, "machine: <!channel>") {
		t.Errorf("body %q", body)
	}
	if strings.Contains(body, "\r") || strings.Contains(body, "\u202e") {
		t.Error("body has CR or bidi override")
	}
	if !strings.Contains(r.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("Content-Type %q", r.Header.Get("Content-Type"))
	}
}

func TestNtfyPriorities(t *testing.T) {
	f := func(name string, m Message, prio, tags string) {
		t.Helper()
		req := formatNtfy(Config{Type: TypeNtfy}, m)
		if got := req.header.Get("Priority"); got != prio {
			t.Errorf("%s: Priority %q, want %q", name, got, prio)
		}
		if got := req.header.Get("Tags"); got != tags {
			t.Errorf("%s: Tags %q, want %q", name, got, tags)
		}
		if req.header.Get("Authorization") != "" {
			t.Errorf("%s: Authorization without token", name)
		}
	}
	crit := sampleMessage(1, "m")
	f("critical", crit, "5", "rotating_light")
	warn := sampleMessage(2, "m")
	warn.Alerts = warn.Alerts[1:]
	f("warning", warn, "4", "warning")
	res := sampleMessage(2, "m")
	res.Status = StatusResolved
	for i := range res.Alerts {
		res.Alerts[i].State = StatusResolved
	}
	f("resolved", res, "3", "white_check_mark")
	test := sampleMessage(2, "m")
	test.Alerts = test.Alerts[1:]
	test.Test = true
	f("test", test, "4", "warning,test_tube")
}

func TestNtfyBodyWithinLimit(t *testing.T) {
	for _, n := range []int{1, 5, 50, 1000} {
		req := formatNtfy(Config{Type: TypeNtfy}, sampleMessage(n, longHostile))
		if len(req.body) > 4096 {
			t.Errorf("n=%d: body %d bytes", n, len(req.body))
		}
		if !utf8.Valid(req.body) {
			t.Errorf("n=%d: body not UTF-8", n)
		}
		if n > 1 && !strings.Contains(string(req.body), "more alert") {
			t.Errorf("n=%d: no summary of the alerts left out", n)
		}
		if !strings.Contains(string(req.body), "https://hub.example/alerts") {
			t.Errorf("n=%d: hub link missing", n)
		}
		if len(req.header.Get("Title")) > 1000 {
			t.Errorf("n=%d: Title %d bytes", n, len(req.header.Get("Title")))
		}
	}
}
