package config

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type settings struct {
	listen   string
	interval time.Duration
	labels   LabelsValue
	retries  int
}

func newFS(s *settings) *flag.FlagSet {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String("config", "", "")
	fs.StringVar(&s.listen, "listen-http", "127.0.0.1:8000", "")
	fs.DurationVar(&s.interval, "interval", time.Second, "")
	fs.Var(&s.labels, "labels", "")
	fs.IntVar(&s.retries, "retries", 3, "")
	return fs
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "listen-http: 0.0.0.0:9000\ninterval: 5s\nretries: 7\nlabels:\n  env: prod\n  role: db\n")
	env := map[string]string{"SYSMONSTM_INTERVAL": "2s", "SYSMONSTM_CONFIG": file}
	var s settings
	err := Parse(newFS(&s), []string{"--retries", "9"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if s.retries != 9 {
		t.Errorf("flag must win: retries = %d", s.retries)
	}
	if s.interval != 2*time.Second {
		t.Errorf("env must beat file: interval = %s", s.interval)
	}
	if s.listen != "0.0.0.0:9000" {
		t.Errorf("file must beat default: listen = %s", s.listen)
	}
	if got := s.labels.String(); got != "env=prod,role=db" {
		t.Errorf("labels from file map = %q", got)
	}
}

func TestDefaultsWithoutSources(t *testing.T) {
	var s settings
	if err := Parse(newFS(&s), nil, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if s.listen != "127.0.0.1:8000" || s.interval != time.Second || s.retries != 3 {
		t.Fatalf("defaults not kept: %+v", s)
	}
}

func TestErrorsNamePrecisely(t *testing.T) {
	f := func(name string, args []string, env map[string]string, fileBody string, want string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			if fileBody != "" {
				env["SYSMONSTM_CONFIG"] = writeFile(t, fileBody)
			}
			var s settings
			err := Parse(newFS(&s), args, func(k string) string { return env[k] })
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v, want it to contain %q", err, want)
			}
		})
	}
	f("bad env", nil, map[string]string{"SYSMONSTM_INTERVAL": "soon"}, "", `invalid value "soon" for SYSMONSTM_INTERVAL (flag --interval)`)
	f("unknown key", nil, map[string]string{}, "interval: 1s\nintreval: 2s\n", `line 2: unknown key "intreval"`)
	f("bad file value", nil, map[string]string{}, "retries: many\n", `line 1: invalid value "many" for retries`)
	f("not a mapping", nil, map[string]string{}, "- a\n- b\n", "top level must be a mapping")
	f("duplicate key", nil, map[string]string{}, "retries: 1\nretries: 2\n", `key "retries" given twice`)
	f("bad label", []string{"--labels", "9x=1"}, map[string]string{}, "", `label name "9x"`)
	f("machine label reserved", []string{"--labels", "machine=x"}, map[string]string{}, "", `not be "machine"`)
	f("stray argument", []string{"extra"}, map[string]string{}, "", `unexpected argument "extra"`)
	f("missing file", []string{"--config", "/nonexistent/x.yaml"}, map[string]string{}, "", "read config file")
}

func TestEmptyFile(t *testing.T) {
	var s settings
	env := map[string]string{"SYSMONSTM_CONFIG": writeFile(t, "")}
	if err := Parse(newFS(&s), nil, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("machine-id"); got != "SYSMONSTM_MACHINE_ID" {
		t.Fatal(got)
	}
}

func FuzzConfigFile(f *testing.F) {
	f.Add([]byte("interval: 1s\nlabels: {a: b}\n"))
	f.Add([]byte("retries: [1, 2]\n"))
	f.Add([]byte("&a x: *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s settings
		fs := newFS(&s)
		_, _ = parseFile("fuzz.yaml", data)
		p := filepath.Join(t.TempDir(), "f.yaml")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		_ = Parse(fs, []string{"--config", p}, func(string) string { return "" })
	})
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8000": true, "localhost:1": true, "[::1]:50051": true, "127.3.4.5:9": true,
		"0.0.0.0:8000": false, ":8000": false, "[::]:1": false, "10.0.0.1:1": false,
		"hub.example.com:50051": false, "localhost.evil.com:1": false, "": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
