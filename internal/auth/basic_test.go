package auth

import (
	"context"
	"encoding/base64"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestBasicAuth: HTTP Basic with a user's name and password reads like a
// login token; verified credentials are remembered for BasicCacheTTL
// (no bcrypt per request) but not past a password change; wrong passwords
// count in the login limiter until lock-out; Basic never writes.
func TestBasicAuth(t *testing.T) {
	s := newTestServer(t, HTTPOptions{AnonymousRead: false})
	var checks atomic.Int32
	check := s.auth.check
	s.auth.check = func(ctx context.Context, name, password string) (User, error) {
		checks.Add(1)
		return check(ctx, name, password)
	}
	basic := func(user, password string) []string {
		return []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))}
	}
	want := func(what string, status int, body map[string]any, wantStatus int, wantUser string) {
		t.Helper()
		if status != wantStatus || (wantUser != "" && body["user"] != wantUser) {
			t.Errorf("%s: %d %v, want %d (user %q)", what, status, body, wantStatus, wantUser)
		}
	}

	status, body, _ := s.do(t, "GET", "/api/machines", "", basic("vera", "viewer-password")...)
	want("viewer reads with Basic", status, body, 200, "vera")
	if body["role"] != "viewer" || body["session"] != false {
		t.Errorf("Basic principal: %v", body)
	}
	status, body, _ = s.do(t, "POST", "/api/v1/query", "query=up", basic("vera", "viewer-password")...)
	want("read-only POST with Basic", status, body, 200, "vera")
	if n := checks.Load(); n != 1 {
		t.Errorf("two requests with the same credentials ran %d password checks, want 1 (cached)", n)
	}
	s.clk.Add(BasicCacheTTL + time.Second)
	status, body, _ = s.do(t, "GET", "/api/machines", "", basic("vera", "viewer-password")...)
	want("after the cache TTL", status, body, 200, "vera")
	if n := checks.Load(); n != 2 {
		t.Errorf("after %s: %d password checks, want 2", BasicCacheTTL, n)
	}

	status, body, _ = s.do(t, "POST", "/api/rules", "{}", basic("root", "admin-password")...)
	want("admin writes with Basic", status, body, http.StatusForbidden, "")

	// A password change ends the remembered credentials at once.
	newPW := "a-new-password"
	if _, err := s.store.UpdateUser(context.Background(), "vera", nil, &newPW); err != nil {
		t.Fatal(err)
	}
	status, body, _ = s.do(t, "GET", "/api/machines", "", basic("vera", "viewer-password")...)
	want("old password after a change", status, body, http.StatusUnauthorized, "")
	status, body, _ = s.do(t, "GET", "/api/machines", "", basic("vera", newPW)...)
	want("new password", status, body, 200, "vera")

	status, body, _ = s.do(t, "GET", "/api/machines", "", "Authorization", "Basic !!!")
	want("malformed Basic", status, body, http.StatusUnauthorized, "")

	// Guesses are failed logins: the limiter locks the user out, and the
	// right password, not verified before, is refused while the lock
	// lasts. (Credentials verified before the lock keep working, as a
	// session token does.)
	if _, err := s.store.AddUser(context.Background(), "gina", "gina-password", RoleViewer); err != nil {
		t.Fatal(err)
	}
	locked := false
	for i := 0; i < 30 && !locked; i++ {
		status, _, hdr := s.do(t, "GET", "/api/machines", "", basic("gina", "guess")...)
		switch status {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			locked = true
			if hdr.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		default:
			t.Fatalf("guess %d: status %d", i, status)
		}
	}
	if !locked {
		t.Fatal("30 wrong Basic passwords never locked the user out")
	}
	status, body, _ = s.do(t, "GET", "/api/machines", "", basic("gina", "gina-password")...)
	want("right password while locked out", status, body, http.StatusTooManyRequests, "")
}
