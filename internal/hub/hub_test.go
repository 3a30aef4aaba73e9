package hub

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/config"
	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

func TestRunServesAndShutsDownCleanly(t *testing.T) {
	dir := t.TempDir()
	for round := 0; round < 2; round++ { // the second round proves the data dir reopens
		h, err := New(Config{ListenHTTP: "127.0.0.1:0", ListenGRPC: "127.0.0.1:0", DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- h.Run(ctx) }()
		testutil.WaitFor(t, 10*time.Second, "hub ready", func() error {
			resp, err := http.Get(h.URL() + "ready")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("GET /ready: %s", resp.Status)
			}
			return nil
		})
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
}

func TestStartupErrorsNameTheSetting(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, err = New(Config{ListenHTTP: busy.Addr().String(), ListenGRPC: "127.0.0.1:0", DataDir: t.TempDir()})
	if !namesSetting(err, "listen-http") {
		t.Fatalf("busy HTTP port: %v", err)
	}
	_, err = New(Config{ListenHTTP: "127.0.0.1:0", ListenGRPC: busy.Addr().String(), DataDir: t.TempDir()})
	if !namesSetting(err, "listen-grpc") {
		t.Fatalf("busy gRPC port: %v", err)
	}
	if _, err = New(Config{DataDir: t.TempDir(), TLSCert: "c.pem"}); !namesSetting(err, "tls-key") {
		t.Fatalf("cert without key: %v", err)
	}
	if _, err = New(Config{DataDir: t.TempDir(), TLSCert: "/nonexistent/c.pem", TLSKey: "/nonexistent/k.pem"}); err == nil || !strings.Contains(err.Error(), "load TLS certificate") {
		t.Fatalf("missing cert files: %v", err)
	}
	if _, err = New(Config{}); !namesSetting(err, "data-dir") {
		t.Fatalf("no data dir: %v", err)
	}
}

// namesSetting reports whether err is a SettingError naming setting (as the
// one at fault or in its reason) by its key, not as a command-line flag.
func namesSetting(err error, setting string) bool {
	var se *config.SettingError
	if !errors.As(err, &se) || strings.Contains(err.Error(), "--") {
		return false
	}
	return se.Setting == setting || strings.Contains(se.Reason, "{"+setting+"}")
}
