package push

import (
	"context"
	"errors"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/config"
	"github.com/sysmonstm/sysmonstm/internal/metric"
)

func TestStore(t *testing.T) {
	s := NewStore(time.Minute)
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	if err := s.Set([]Metric{{Name: "backup_ok", Labels: map[string]string{"job": "nightly"}, Value: 1}, {Name: "x", Value: 2}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]Metric{{Name: "backup_ok", Labels: map[string]string{"job": "nightly"}, Value: 5}}); err != nil {
		t.Fatal(err)
	}
	got := s.Append(nil)
	if len(got) != 2 {
		t.Fatalf("samples %+v", got)
	}
	for _, sm := range got {
		if sm.Name == "backup_ok" && (sm.Value != 5 || sm.Labels.Get("job") != "nightly") {
			t.Fatalf("replaced value %+v", sm)
		}
	}
	for name, bad := range map[string][]Metric{
		"empty":          nil,
		"bad name":       {{Name: "1x", Value: 1}},
		"machine label":  {{Name: "x", Labels: map[string]string{"machine": "y"}, Value: 1}},
		"NaN":            {{Name: "x", Value: math.NaN()}},
		"one bad of two": {{Name: "fine", Value: 1}, {Name: "x", Value: math.Inf(1)}},
		"too many":       make([]Metric, MaxPerPush+1),
	} {
		if err := s.Set(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if s.Len() != 2 {
		t.Fatalf("a rejected push stored something: %d series", s.Len())
	}
	// The series bound counts what is held.
	many := make([]Metric, MaxSeries-1)
	for i := range many {
		many[i] = Metric{Name: "m", Labels: map[string]string{"i": strings.Repeat("a", i%7) + string(rune('a'+i%26)) + string(rune('0'+i/26%10)) + string(rune('a'+i/260))}, Value: 1}
	}
	if err := s.Set(many); err == nil {
		t.Fatal("exceeded MaxSeries")
	}
	// TTL: values not pushed again go stale.
	now = now.Add(2 * time.Minute)
	if got := s.Append(nil); len(got) != 0 {
		t.Fatalf("stale values kept: %+v", got)
	}
	forever := NewStore(0)
	forever.now = func() time.Time { return now }
	_ = forever.Set([]Metric{{Name: "x", Value: 1}})
	now = now.Add(1000 * time.Hour)
	if got := forever.Append([]metric.Sample{}); len(got) != 1 {
		t.Fatal("ttl 0 dropped a value")
	}
}

func TestServerRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.sock")
	// A stale socket file (nobody listening) is replaced.
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()

	store := NewStore(0)
	srv, err := Listen(path, 0o600, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, %v", fi.Mode(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()

	if err := Push(ctx, path, []Metric{{Name: "backup_last_success_timestamp_seconds", Labels: map[string]string{"job": "nightly"}, Value: 1.7e9}}); err != nil {
		t.Fatal(err)
	}
	if got := store.Append(nil); len(got) != 1 || got[0].Value != 1.7e9 {
		t.Fatalf("stored %+v", got)
	}
	err = Push(ctx, path, []Metric{{Name: "bad-name", Value: 1}})
	if err == nil || !strings.Contains(err.Error(), "agent rejected the push") || !strings.Contains(err.Error(), "invalid metric name") {
		t.Fatalf("invalid push: %v", err)
	}
	// A second agent on the same socket refuses to start.
	if _, err := Listen(path, 0o600, NewStore(0), nil); !errors.Is(err, ErrInUse) {
		t.Fatalf("second listener: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
	err = Push(context.Background(), path, []Metric{{Name: "x", Value: 1}})
	if err == nil || !strings.Contains(err.Error(), "no agent at "+path) || !strings.Contains(err.Error(), "sysmonstm agent") {
		t.Fatalf("no agent: %v", err)
	}
	if strings.Contains(err.Error(), "--") || !strings.Contains(config.Flagged(err).Error(), "(or pass its --push-socket with --socket)") {
		t.Errorf("no agent: %q; want setting keys, shown as flags by config.Flagged", err)
	}
}

func TestListenRefusesNonSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(path, 0o600, NewStore(0), nil); err == nil || !strings.Contains(err.Error(), "not a socket") || strings.Contains(err.Error(), "--") {
		t.Fatalf("err = %v", err)
	}
}
