package scrape

import (
	"flag"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseTarget(t *testing.T) {
	tg, err := ParseTarget(" http://127.0.0.1:9100/metrics ; job=node ; interval=30s ")
	if err != nil {
		t.Fatal(err)
	}
	want := Target{URL: "http://127.0.0.1:9100/metrics", Job: "node", Instance: "127.0.0.1:9100", Interval: 30 * time.Second,
		Timeout: 10 * time.Second, SampleLimit: DefaultSampleLimit, BodyLimit: DefaultBodyLimit}
	if tg != want {
		t.Errorf("got %+v\nwant %+v", tg, want)
	}
	tg, err = ParseTarget("https://db:9187/metrics;timeout=2s;interval=5s;sample_limit=500;body_limit=2MiB;honor_labels=true")
	if err != nil {
		t.Fatal(err)
	}
	want = Target{URL: "https://db:9187/metrics", Job: DefaultJob, Instance: "db:9187", Interval: 5 * time.Second,
		Timeout: 2 * time.Second, SampleLimit: 500, BodyLimit: 2 << 20, HonorLabels: true}
	if tg != want {
		t.Errorf("got %+v\nwant %+v", tg, want)
	}
	if tg, _ := ParseTarget("http://h:1/;interval=2s"); tg.Timeout != 1800*time.Millisecond {
		t.Errorf("default timeout at 2s = %s, want 1.8s", tg.Timeout)
	}
}

func TestParseTargetErrors(t *testing.T) {
	f := func(spec, wantErr string) {
		t.Helper()
		_, err := ParseTarget(spec)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("ParseTarget(%q) = %v, want an error with %q", spec, err, wantErr)
		}
	}
	f("", "http:// or https://")
	f("127.0.0.1:9100/metrics", "http:// or https://")
	f("ftp://h/metrics", "http:// or https://")
	f("http:///metrics", "no host")
	f("http://u:p@h:1/", "credentials")
	f("http://h:1/;job", "want key=value")
	f("http://h:1/;job=a;job=b", "given twice")
	f("http://h:1/;color=red", "unknown option")
	f("http://h:1/;interval=fast", "option interval=fast")
	f("http://h:1/;interval=500ms", "between 1s and 1h")
	f("http://h:1/;interval=10s;timeout=10s", "less than the interval")
	f("http://h:1/;sample_limit=0", "must be positive")
	f("http://h:1/;interval=-1s", "must be positive")
	f("http://h:1/;sample_limit=100000", "sample_limit")
	f("http://h:1/;body_limit=10", "body_limit")
	f("http://h:1/;body_limit=2GiB", "more than")
	f("http://h:1/;job=a\x01b", "job")
	f("http://h:1/;honor_labels=maybe", "honor_labels")
}

func TestSplitTargets(t *testing.T) {
	f := func(in string, want ...string) {
		t.Helper()
		if got := SplitTargets(in); !slices.Equal(got, want) {
			t.Errorf("SplitTargets(%q) = %q, want %q", in, got, want)
		}
	}
	f("http://a:1/metrics;job=a", "http://a:1/metrics;job=a")
	f("http://a:1/m;job=a,https://b:2/m", "http://a:1/m;job=a", "https://b:2/m")
	f("http://a:1/probe?target=x,y;job=a, http://b:2/", "http://a:1/probe?target=x,y;job=a", "http://b:2/")
	f(" \t")
}

func TestTargetsFlag(t *testing.T) {
	var ts []Target
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Var((*TargetsValue)(&ts), "scrape", "")
	if err := fs.Parse([]string{"--scrape", "http://a:1/;job=a", "--scrape", "http://b:2/,http://c:3/"}); err != nil {
		t.Fatal(err)
	}
	if len(ts) != 3 || ts[0].Job != "a" || ts[2].Instance != "c:3" {
		t.Errorf("targets %+v", ts)
	}
	if err := CheckTargets(ts); err != nil {
		t.Error(err)
	}
	dup := append(ts, testTarget(t, "http://a:1/other;job=a"))
	if err := CheckTargets(dup); err == nil || !strings.Contains(err.Error(), "collide") {
		t.Errorf("CheckTargets with a repeated job and instance = %v", err)
	}
}
