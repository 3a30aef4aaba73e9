package alert

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

func TestDecodeRuleErrors(t *testing.T) {
	f := func(js, want string) {
		t.Helper()
		_, err := DecodeRule([]byte(js))
		if err == nil {
			t.Fatalf("%s: accepted, want error %q", js, want)
		}
		if !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("%s:\n got %q\nwant prefix %q", js, err, want)
		}
	}
	base := `"name":"n","metric":"cpu","op":">","threshold":1`
	f(`{`+base+`,"tresh":1}`, `tresh: unknown field`)
	f(`{"metric":"cpu","op":">","threshold":1}`, `name: required`)
	f(`{"name":"n","op":">","threshold":1}`, `metric: required`)
	f(`{"name":"n","metric":"9cpu","op":">","threshold":1}`, `metric: "9cpu" is not a metric name`)
	f(`{"name":"n","metric":"cpu{cpu=~\"t.*\"}","op":">","threshold":1}`, `metric: selector: "=~" after cpu: only = is supported`)
	f(`{"name":"n","metric":"cpu{cpu=\"total\"","op":">","threshold":1}`, `metric: selector: expected ',' or '}'`)
	f(`{"name":"n","metric":"cpu{cpu=\"a\"}","matchers":{"cpu":"b"},"op":">","threshold":1}`, `matchers: label "cpu" is given in both`)
	f(`{"name":"n","metric":"cpu","threshold":1}`, `op: required`)
	f(`{"name":"n","metric":"cpu","op":"=>","threshold":1}`, `op: "=>": must be one of`)
	f(`{"name":"n","metric":"cpu","op":">"}`, `threshold: required`)
	f(`{"name":"n","metric":"cpu","op":">","threshold":"90"}`, `threshold: must be a number, not a JSON string`)
	f(`{`+base+`,"for":"5 minutes"}`, `for: "5 minutes" is not a duration`)
	f(`{`+base+`,"for":"-5m"}`, `for: -5m is negative`)
	f(`{`+base+`,"for":"800h"}`, `for: 800h: must be between 0s and 168h`)
	f(`{`+base+`,"severity":"page"}`, `severity: "page": must be "warning" or "critical"`)
	f(`{`+base+`,"kind":"absent"}`, `kind: "absent": must be "threshold" or "offline"`)
	f(`{`+base+`,"clear":95}`, `clear: 95 is above the threshold 1`)
	f(`{"name":"n","metric":"cpu","op":"<","threshold":10,"clear":5}`, `clear: 5 is below the threshold 10`)
	f(`{`+base+`,"aggregation":"p99"}`, `aggregation: "p99": must be`)
	f(`{`+base+`,"window":"1m"}`, `window: only used with aggregation`)
	f(`{`+base+`,"aggregation":"avg","window":"48h"}`, `window: 48h: at most 24h`)
	f(`{`+base+`,"machines":[]}`, `machines: an empty list matches no machine`)
	f(`{`+base+`,"machines":42}`, `machines: must be "*" or a list`)
	f(`{`+base+`,"machines":["bad\u0001id"]}`, `machines: "bad\x01id": machine id`)
	f(`{`+base+`,"machine_labels":{"e-nv":"x"}}`, `machine_labels: "e-nv" is not a label name`)
	f(`{`+base+`,"matchers":{"__name__":"x"}}`, `matchers: "__name__" is not a label name`)
	f(`{`+base+`,"description":"{{hostname}}"}`, `description: unknown placeholder {{hostname}}`)
	f(`{`+base+`,"description":"{{machine"}`, `description: unclosed {{`)
	f(`{`+base+`,"notifiers":["a","a"]}`, `notifiers: "a" is listed twice`)
	f(`{`+base+`,"id":"has space"}`, `id: "has space"`)
	f(`{"name":"n","kind":"offline","metric":"cpu"}`, `metric: not used by offline rules`)
	f(`{"name":"n","kind":"offline","op":">"}`, `op: not used by offline rules`)
	f(`{"name":"n","kind":"offline","for":"0s"}`, `for: 0s: an offline rule needs at least 1s`)
	f(`{"name":"`+strings.Repeat("x", 201)+`","metric":"cpu","op":">","threshold":1}`, `name: is 201 bytes`)
	f(``, `body: empty`)
	f(`{`+base+`} {}`, `body: unexpected data`)
	f(`[1]`, `body: cannot unmarshal`)
}

func TestDecodeRuleDefaultsAndRoundTrip(t *testing.T) {
	r, err := DecodeRule([]byte(`{"name":" disk ","metric":"filesystem_usage_percent{mountpoint=\"/\", device=\"/dev/*\"}","op":">=","threshold":90,"for":"5m","aggregation":"avg","machines":"*"}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "disk" || r.Kind != KindThreshold || r.Metric != "filesystem_usage_percent" ||
		!reflect.DeepEqual(r.Matchers, map[string]string{"mountpoint": "/", "device": "/dev/*"}) ||
		r.Severity != SeverityWarning || !r.Enabled || r.Window != 5*time.Minute || r.Machines != nil || r.Clear != nil {
		t.Fatalf("decoded %+v", r)
	}
	r.ID = "disk"
	r.CreatedAt = t0
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"machines":"*"`, `"for":"5m"`, `"window":"5m"`, `"clear":null`, `"threshold":90`, `"kind":"threshold"`, `"enabled":true`, `"builtin":false`, `"created_at":"2026-11-22T10:00:00Z"`} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("%s lacks %s", b, want)
		}
	}
	back, err := DecodeRule(b)
	if err != nil {
		t.Fatalf("round trip of %s: %v", b, err)
	}
	if !reflect.DeepEqual(back, r) {
		t.Fatalf("round trip:\n%+v\n%+v", back, r)
	}

	// Offline rules default to 1m; window defaults to for, at least 1s.
	off, err := DecodeRule([]byte(`{"name":"o","kind":"offline","enabled":false,"machines":["web-*"]}`))
	if err != nil || off.For != time.Minute || off.Enabled || off.Machines[0] != "web-*" {
		t.Fatalf("offline %+v %v", off, err)
	}
	b, _ = json.Marshal(off)
	if strings.Contains(string(b), `"threshold"`) || strings.Contains(string(b), `"op"`) {
		t.Fatalf("offline rule JSON %s", b)
	}
	if back, err := DecodeRule(b); err != nil || !reflect.DeepEqual(back, off) {
		t.Fatalf("offline round trip %+v %v", back, err)
	}
	mx, err := DecodeRule([]byte(`{"name":"m","metric":"x","op":"<","threshold":1,"aggregation":"max","clear":2}`))
	if err != nil || mx.Window != time.Second || *mx.Clear != 2 {
		t.Fatalf("%+v %v", mx, err)
	}
	for _, r := range DefaultRules() {
		b, _ := json.Marshal(r)
		if _, err := DecodeRule(b); err != nil {
			t.Fatalf("default %s does not round-trip: %v", r.ID, err)
		}
	}
}

func TestParseSelector(t *testing.T) {
	f := func(in, name string, ms map[string]string) {
		t.Helper()
		n, got, err := ParseSelector(in)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if n != name || !reflect.DeepEqual(got, ms) {
			t.Fatalf("%s: %q %v, want %q %v", in, n, got, name, ms)
		}
		if len(ms) > 0 {
			if again, back, err := ParseSelector(FormatSelector(n, got)); err != nil || again != n || !reflect.DeepEqual(back, got) {
				t.Fatalf("format round trip of %s: %q %v %v", in, again, back, err)
			}
		}
	}
	f(`cpu`, "cpu", nil)
	f(`cpu{}`, "cpu", map[string]string{})
	f(` cpu { cpu = "total" } `, "cpu", map[string]string{"cpu": "total"})
	f(`fs{mountpoint="/",device="/dev/sd*",}`, "fs", map[string]string{"mountpoint": "/", "device": "/dev/sd*"})
	f(`x{a="q\"uote\\d\n"}`, "x", map[string]string{"a": "q\"uote\\d\n"})
	for _, bad := range []string{`cpu{`, `cpu{a}`, `cpu{a="x"`, `cpu{a=x}`, `cpu{a="x"} y`, `cpu{a="x",a="y"}`, `{a="x"}`, `cpu{9a="x"}`, `cpu{a!="x"}`, `cpu{a="\q"}`, `cpu{a="x`} {
		if _, _, err := ParseSelector(bad); err == nil {
			t.Fatalf("%s: accepted", bad)
		}
	}
}

func TestRenderDescription(t *testing.T) {
	clear := 85.0
	r := Rule{Name: "disk", Metric: "fs", Op: ">", Threshold: 90, Clear: &clear, For: 5 * time.Minute, Severity: "critical",
		Aggregation: AggAvg, Window: 90 * time.Second,
		Description: "{{rule}}: {{labels.mountpoint}} on {{machine}} is {{value}} {{op}} {{threshold}} (clear {{clear}}, {{for}}, {{window}}, {{severity}}, {{metric}}, {{labels.none}}|)"}
	if err := checkTemplate(r.Description); err != nil {
		t.Fatal(err)
	}
	got := render(renderInput{rule: &r, machine: "web-1", labels: metric.Labels{{Name: "mountpoint", Value: "/var"}}, value: 93.456})
	want := "disk: /var on web-1 is 93.46 > 90 (clear 85, 5m, 1m30s, critical, fs, |)"
	if got != want {
		t.Fatalf("render:\n got %q\nwant %q", got, want)
	}
	r.Description = ""
	if got := render(renderInput{rule: &r, machine: "m", value: 1}); got != "fs on m is 1 (> 90)" {
		t.Fatalf("default description %q", got)
	}
	for v, want := range map[float64]string{0: "0", 93.2: "93.2", 0.00123: "0.0012", 1.5e12: "1.5e+12", -4: "-4", 0.00001: "1e-05"} {
		if got := formatValue(v); got != want {
			t.Errorf("formatValue(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestDecodeSilence(t *testing.T) {
	now := t0
	f := func(js, want string) {
		t.Helper()
		_, err := decodeSilence([]byte(js), now)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("%s: %v, want %q", js, err, want)
		}
	}
	f(`{"duration":"1h"}`, "matchers: at least one of")
	f(`{"matchers":{"machine":"a"}}`, "ends_at: required")
	f(`{"matchers":{"machine":"a"},"duration":"soon"}`, `duration: "soon" is not a duration`)
	f(`{"matchers":{"machine":"a"},"duration":"1h","ends_at":"2026-11-22T12:00:00Z"}`, "duration: give either")
	f(`{"matchers":{"machine":"a"},"ends_at":"2026-11-22T09:00:00Z"}`, "ends_at: is in the past")
	f(`{"matchers":{"machine":"a"},"starts_at":"2026-11-22T12:00:00Z","ends_at":"2026-11-22T11:00:00Z"}`, "ends_at: must be after starts_at")
	f(`{"matchers":{"machine":"a"},"duration":"9000h"}`, "ends_at: a silence may last at most")
	f(`{"matchers":{"labels":{"a b":"x"}},"duration":"1h"}`, `matchers.labels: "a b" is not a label name`)
	f(`{"matchers":{"machine":"a","rule":"x"},"duration":"1h"}`, `rule: unknown field`)
	s, err := decodeSilence([]byte(`{"matchers":{"rule_id":"cpu","machine":"web-*"},"duration":"2h","comment":" deploy "}`), now)
	if err != nil || !s.StartsAt.Equal(now) || !s.EndsAt.Equal(now.Add(2*time.Hour)) || s.Comment != "deploy" {
		t.Fatalf("%+v %v", s, err)
	}
	for _, c := range []struct {
		a    Alert
		want bool
	}{
		{Alert{RuleID: "cpu", Machine: "web-1"}, true},
		{Alert{RuleID: "cpu", Machine: "db-1"}, false},
		{Alert{RuleID: "mem", Machine: "web-1"}, false},
	} {
		if got := s.matches(&c.a); got != c.want {
			t.Errorf("matches(%+v) = %v", c.a, got)
		}
	}
	if s.activeAt(now.Add(-time.Second)) || !s.activeAt(now) || s.activeAt(now.Add(2*time.Hour)) {
		t.Fatal("activeAt bounds")
	}
}

func FuzzRule(f *testing.F) {
	f.Add([]byte(`{"name":"n","metric":"cpu{cpu=\"total\"}","op":">","threshold":90,"for":"5m","clear":80}`))
	f.Add([]byte(`{"name":"o","kind":"offline","for":"1m","machines":["web-*"],"machine_labels":{"env":"p*"}}`))
	f.Add([]byte(`{"name":"a","metric":"x{a=\"\\\"\",b=\"*\"}","op":"<=","threshold":-1,"aggregation":"avg","window":"1h","description":"{{labels.a}} {{value}}"}`))
	f.Add([]byte(`{"name":"i","metric":"container_restarts_total","op":">=","threshold":3,"aggregation":"increase","window":"15m","description":"{{value}} in {{window}}"}`))
	for _, r := range DefaultRules() {
		b, _ := json.Marshal(r)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRule(b)
		if err != nil {
			return
		}
		// An accepted rule re-encodes to a rule that decodes the same way.
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("marshal accepted rule: %v", err)
		}
		back, err := DecodeRule(out)
		if err != nil {
			t.Fatalf("re-decode %s: %v", out, err)
		}
		if !reflect.DeepEqual(back, r) {
			t.Fatalf("round trip differs:\n%+v\n%+v", r, back)
		}
		c := compile(r)
		_ = c.selects("m", nil)
		_ = render(renderInput{rule: &r, machine: "m", value: 1})
		if name, ms, err := ParseSelector(FormatSelector(r.Metric, r.Matchers)); r.Kind == KindThreshold && (err != nil || name != r.Metric || (len(ms) > 0 && !reflect.DeepEqual(ms, r.Matchers))) {
			t.Fatalf("selector round trip of %q %v: %q %v %v", r.Metric, r.Matchers, name, ms, err)
		}
	})
}

// FuzzSilence feeds arbitrary POST /api/silences bodies to the decoder: it
// never panics, and what it accepts is a bounded, well-ordered, non-empty
// silence that re-encodes to JSON.
func FuzzSilence(f *testing.F) {
	f.Add([]byte(`{"matchers":{"rule_id":"abc123","machine":"web-*"},"duration":"2h","comment":"deploy"}`))
	f.Add([]byte(`{"matchers":{"labels":{"mountpoint":"/"}},"starts_at":"2026-11-25T10:00:00Z","ends_at":"2026-11-25T12:00:00Z"}`))
	f.Add([]byte(`{"matchers":{"machine":"<img src=x>"},"duration":"-1h"}`))
	f.Add([]byte(`{"matchers":{},"duration":"1h"} {}`))
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSilence(b, now)
		if err != nil {
			return
		}
		m := s.Matchers
		if m.RuleID == "" && m.Machine == "" && len(m.Labels) == 0 {
			t.Fatalf("accepted a silence of everything: %s", b)
		}
		if !s.EndsAt.After(s.StartsAt) || !s.EndsAt.After(now) || s.EndsAt.Sub(s.StartsAt) > maxSilence {
			t.Fatalf("accepted bad times %v → %v: %s", s.StartsAt, s.EndsAt, b)
		}
		if _, err := json.Marshal(s); err != nil {
			t.Fatalf("accepted silence does not encode: %v", err)
		}
	})
}

// FuzzAck feeds arbitrary POST /api/alerts/{id}/ack bodies to the decoder:
// it never panics, every refusal is a *FieldError (a 400, never a 500), and
// an accepted comment is trimmed and within the limit.
func FuzzAck(f *testing.F) {
	f.Add([]byte(`{"comment":"looking"}`))
	f.Add([]byte(``))
	f.Add([]byte(`  `))
	f.Add([]byte(`{"comment":1}`))
	f.Add([]byte(`{"comment":"a"} {}`))
	f.Add([]byte(`{"bogus":true}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeAck(b)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("%q: error %v is not a field error", b, err)
			}
			return
		}
		if len(c) > maxAckComment || c != strings.TrimSpace(c) {
			t.Fatalf("%q: accepted comment %q", b, c)
		}
	})
}
