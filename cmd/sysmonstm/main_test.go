package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestEveryFlagIsDocumented keeps docs/configuration.md true: each flag of
// each command must appear there as `--name`.
func TestEveryFlagIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	flagLine := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)
	for _, cmd := range []string{"up", "hub", "agent", "loadgen", "export", "top", "push", "version", "edge", "token", "user", "machine"} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{cmd, "--help"}, &out, &errOut); code != 0 {
			t.Fatalf("%s --help: exit %d", cmd, code)
		}
		flags := flagLine.FindAllStringSubmatch(errOut.String(), -1)
		if len(flags) < 3 {
			t.Fatalf("%s --help listed %d flags:\n%s", cmd, len(flags), errOut.String())
		}
		for _, f := range flags {
			if !strings.Contains(string(doc), "`--"+f[1]+"`") {
				t.Errorf("sysmonstm %s --%s is not documented in docs/configuration.md", cmd, f[1])
			}
		}
	}
}

func TestStartupErrorsArePrecise(t *testing.T) {
	f := func(want string, args ...string) {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code == 0 {
			t.Fatalf("%v: exit 0", args)
		}
		if !strings.Contains(errOut.String(), want) {
			t.Fatalf("%v: stderr %q lacks %q", args, errOut.String(), want)
		}
	}
	f(`unknown command "nope"`, "nope")
	f("--interval 1ms: must be between 100ms and 1h", "agent", "--interval", "1ms")
	f(`--hub "nohost": want HOST:PORT`, "agent", "--hub", "nohost")
	f(`--hub "127.0.0.1:2": listed twice`, "agent", "--hub", "127.0.0.1:1,127.0.0.1:2,127.0.0.1:2")
	f(`--hub "127.0.0.1:1,": empty entry in the list`, "agent", "--hub", "127.0.0.1:1,")
	f(`--hub "localhost:99999": port "99999" must be a number from 1 to 65535`, "agent", "--hub", "127.0.0.1:1,localhost:99999")
	f("refusing plaintext to 10.1.2.3:50051, which is not on loopback", "agent", "--hub", "127.0.0.1:1,10.1.2.3:50051", "--push-socket", "")
	f(`--hub "h:1": listed twice`, "loadgen", "--hub", "h:1,h:1")
	f("--retention-1m 1h0m0s: must be at least --retention-raw", "hub", "--retention-1m", "1h")
	f("--nats nats://127.0.0.1:1: needs --postgres", "hub", "--nats", "nats://u:secret@127.0.0.1:1", "--data-dir", t.TempDir())
	f("--nats nats://127.0.0.1:1: needs at least one --remote-write", "hub", "--nats", "nats://127.0.0.1:1", "--postgres", "postgres://127.0.0.1/x", "--data-dir", t.TempDir())
	f(`--nats http://h: want nats://HOST:PORT`, "hub", "--nats", "http://h", "--postgres", "postgres://127.0.0.1/x", "--data-dir", t.TempDir())
	f("--nats-replicas: needs --nats", "hub", "--nats-replicas", "3", "--data-dir", t.TempDir())
	f("--tls-cert and --tls-key go together", "hub", "--tls-cert", "x.pem", "--data-dir", t.TempDir())
	f("--machines 0: must be between 1 and 100000", "loadgen", "--machines", "0")
	f("--series 60000: must be between 20 and 50000", "loadgen", "--series", "60000")
	f("--format \"xml\": want csv or json", "export", "--machine", "m", "--format", "xml")
	f(`label name "9"`, "agent", "--labels", "9=x")
	f(`--log-level "loud"`, "version", "--log-level", "loud")
	f("refusing plaintext to 10.1.2.3:50051, which is not on loopback", "agent", "--hub", "10.1.2.3:50051", "--push-socket", "")
	f("--tls-client-ca needs TLS", "hub", "--tls-client-ca", "ca.pem", "--data-dir", t.TempDir())
	f("--nats nats://127.0.0.1:1: needs --postgres", "hub", "--nats", "nats://u:secret@127.0.0.1:1", "--data-dir", t.TempDir())
	f("--nats nats://127.0.0.1:1: needs at least one --remote-write", "hub", "--nats", "nats://127.0.0.1:1", "--postgres", "postgres://127.0.0.1/x", "--data-dir", t.TempDir())
	f(`--nats http://h: want nats://HOST:PORT`, "hub", "--nats", "http://h", "--postgres", "postgres://127.0.0.1/x", "--data-dir", t.TempDir())
	f("--nats-replicas: needs --nats", "hub", "--nats-replicas", "3", "--data-dir", t.TempDir())
	f("--tls-cert and --tls-key go together", "agent", "--tls-cert", "c.pem", "--push-socket", "")
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version", "-version", "-v"} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{arg}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "sysmonstm ") || !strings.Contains(out.String(), "commit") {
			t.Errorf("sysmonstm %s: exit %d, stdout %q, stderr %q", arg, code, out.String(), errOut.String())
		}
	}
}

// TestHelpNamesEveryArgument: each flag that takes a value shows what kind
// (-labels k=v,…, -data-dir DIR), not the Go type or "value", and no usage
// text keeps a backquote (the flag package turns only the first backquoted
// word into the argument's name: quote that word, and only that one).
func TestHelpNamesEveryArgument(t *testing.T) {
	flagLine := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)(?: (\S+))?$`)
	vague := map[string]bool{"value": true, "string": true, "int": true, "int64": true, "uint": true, "uint64": true, "float": true}
	for _, cmd := range []string{"up", "hub", "agent", "loadgen", "export", "top", "push", "version", "edge", "token", "user"} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{cmd, "--help"}, &out, &errOut); code != 0 {
			t.Fatalf("%s --help: exit %d", cmd, code)
		}
		help := errOut.String()
		for _, m := range flagLine.FindAllStringSubmatch(help, -1) {
			if vague[m[2]] {
				t.Errorf("sysmonstm %s --help: -%s %s: name the argument: put its name in backquotes in the usage text", cmd, m[1], m[2])
			}
		}
		if _, flags, _ := strings.Cut(help, "\nFlags"); strings.Contains(flags, "`") {
			t.Errorf("sysmonstm %s --help keeps a backquote:\n%s", cmd, help)
		}
	}
	var out, errOut bytes.Buffer
	run(context.Background(), []string{"top", "--help"}, &out, &errOut)
	if !regexp.MustCompile(`-token TOKEN\n\s+login TOKEN`).MatchString(errOut.String()) {
		t.Errorf("top --help does not say -token is a login token:\n%s", errOut.String())
	}
}
