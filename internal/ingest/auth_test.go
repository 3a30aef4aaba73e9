package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestAuthOnStreams: a token valid for another machine is PermissionDenied;
// a token revoked while its stream is open (and idle: the agent sends
// nothing) ends the stream with Unauthenticated at the next re-check.
func TestAuthOnStreams(t *testing.T) {
	var revoked atomic.Bool
	var checks atomic.Int64
	e := newEnv(t, t.TempDir(), func(_ context.Context, token, machine string) error {
		checks.Add(1)
		switch {
		case revoked.Load():
			return errors.New("token revoked")
		case machine != "m":
			return fmt.Errorf("%w: token is bound to %q", ErrPermissionDenied, "m")
		}
		return nil
	}, func(o *Options) { o.AuthRecheck = 500 * time.Millisecond })
	_, err := e.connect("other", 1)
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "--machine other") {
		t.Fatalf("other machine: %v", err)
	}
	a, err := e.connect("m", 1)
	if err != nil {
		t.Fatal(err)
	}
	// Still open across a re-check.
	time.Sleep(e.srv.opts.AuthRecheck + 500*time.Millisecond)
	if checks.Load() < 3 {
		t.Fatalf("%d auth checks: the open stream was not re-checked", checks.Load())
	}
	revoked.Store(true)
	began := time.Now()
	_, err = a.s.Recv()
	took := time.Since(began)
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "token revoked") {
		t.Fatalf("after revocation: %v", err)
	}
	if took > e.srv.opts.AuthRecheck+time.Second {
		t.Fatalf("stream closed %s after revocation, want within %s", took, e.srv.opts.AuthRecheck)
	}
	t.Logf("stream closed %s after revocation (re-check every %s)", took.Round(time.Millisecond), e.srv.opts.AuthRecheck)
}

// TestRecheckAuthNow: RecheckAuth re-checks every open stream at once, so
// a token revoked elsewhere (another hub, NOTIFY) ends its stream without
// waiting for the periodic re-check.
func TestRecheckAuthNow(t *testing.T) {
	var revoked atomic.Bool
	e := newEnv(t, t.TempDir(), func(_ context.Context, token, machine string) error {
		if revoked.Load() {
			return errors.New("token revoked")
		}
		return nil
	}, func(o *Options) { o.AuthRecheck = time.Hour })
	var streams []*agentConn
	for _, m := range []string{"m1", "m2"} {
		a, err := e.connect(m, 1)
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, a)
	}
	e.srv.RecheckAuth() // still valid: nothing closes
	revoked.Store(true)
	e.srv.RecheckAuth()
	for _, a := range streams {
		done := make(chan error, 1)
		go func() { _, err := a.s.Recv(); done <- err }()
		select {
		case err := <-done:
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("after RecheckAuth: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("RecheckAuth did not end a revoked token's stream (the periodic re-check is an hour away)")
		}
	}
}

func TestHTTPIngestWrongMachineIs403(t *testing.T) {
	e := newEnv(t, t.TempDir(), func(_ context.Context, token, machine string) error {
		if token != "tok" {
			return errors.New("unknown token")
		}
		if machine != "m" {
			return fmt.Errorf("%w: bound to m", ErrPermissionDenied)
		}
		return nil
	})
	h := e.srv.HTTPHandler()
	body := `{"machine":"x","metrics":[{"name":"a","value":1}]}`
	if code, out := post(t, h, body, "Authorization", "Bearer tok"); code != 403 || !strings.Contains(fmt.Sprint(out["error"]), `machine "x"`) {
		t.Fatalf("wrong machine: %d %v", code, out)
	}
	if code, out := post(t, h, body, "Authorization", "Bearer bad"); code != 401 || !strings.Contains(fmt.Sprint(out["error"]), "token rejected") {
		t.Fatalf("bad token: %d %v", code, out)
	}
}
