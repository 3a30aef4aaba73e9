package testutil

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// NeedBinary returns the path of an engine's program (victoria-metrics,
// prometheus…). Without it the test skips, saying how to install it
// (install, e.g. "apt-get install victoria-metrics"), except in CI
// (CI=true), where it fails.
func NeedBinary(t testing.TB, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI (%s): %v", name, install, err)
		}
		t.Skipf("%s not installed (%s)", name, install)
	}
	return p
}

// VMSeries is one series of a VictoriaMetrics /api/v1/export answer.
type VMSeries struct {
	Metric     map[string]string
	Values     []float64
	Timestamps []int64 // ms since epoch
}

// VMExport flushes VictoriaMetrics at addr (HOST:PORT) and returns every
// raw sample of the series matching match, as it stores them (after its
// de-duplication, when on).
func VMExport(t testing.TB, addr, match string) []VMSeries {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/internal/force_flush")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = http.Get("http://" + addr + "/api/v1/export?" + url.Values{"match[]": {match}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []VMSeries
	dec := json.NewDecoder(resp.Body)
	for {
		var s VMSeries
		if err := dec.Decode(&s); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
}

// VMSamples is VMExport as text, easy to compare: by series ("name=value"
// pairs sorted, comma-separated), its samples as "ts=value" strings,
// sorted.
func VMSamples(t testing.TB, addr, match string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, line := range VMExport(t, addr, match) {
		keys := make([]string, 0, len(line.Metric))
		for k, v := range line.Metric {
			keys = append(keys, k+"="+v)
		}
		sort.Strings(keys)
		key := strings.Join(keys, ",")
		for i, ts := range line.Timestamps {
			out[key] = append(out[key], fmt.Sprintf("%d=%g", ts, line.Values[i]))
		}
	}
	for k := range out {
		slices.Sort(out[k])
	}
	return out
}

// FreeAddr returns a loopback address with a port that was free.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// syncBuffer collects a process' output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// StartProcess runs an engine's program (bin with args) until the test
// ends, killing it then, and waits until GET health answers 200. Its
// output is logged when the test failed.
func StartProcess(t testing.TB, name, bin, health string, args ...string) {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", name, out.String())
		}
	})
	WaitFor(t, 60*time.Second, name+" healthy", func() error {
		select {
		case <-done:
			t.Fatalf("%s exited: %s", name, out.String())
		default:
		}
		resp, err := http.Get(health)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}
