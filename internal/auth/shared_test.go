package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/db/dbtest"
)

// TestStoresShareOneDatabase, on each backend: two stores on one database
// (two hubs on PostgreSQL; the hub and the CLI on SQLite) see each other's
// users, sessions and tokens: a user added on A logs in on B, a session
// made on A is valid on B and ends there when A logs out, a token made on
// A verifies on B, and once A revokes it B refuses it as soon as its cache
// is invalidated (the hub does that on NOTIFY), without waiting for the
// cache's TTL.
func TestStoresShareOneDatabase(t *testing.T) {
	for _, backend := range dbtest.Backends {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			dA, dB := dbtest.OpenAt(t, backend, dir), dbtest.OpenAt(t, backend, dir)
			a := openStore(t, dA, nil, Options{})
			b := openStore(t, dB, nil, Options{TokenCacheTTL: time.Hour})
			if string(a.key) != string(b.key) {
				t.Fatal("the stores hold different token keys")
			}
			if _, err := a.AddUser(ctx, "alice", "alice-password-1", RoleAdmin); err != nil {
				t.Fatal(err)
			}
			if u, err := b.CheckPassword(ctx, "alice", "alice-password-1"); err != nil || u.Role != RoleAdmin {
				t.Fatalf("B: alice's login: %+v %v", u, err)
			}
			tok, _, err := a.CreateSession(ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			if s, err := b.LookupSession(ctx, tok); err != nil || s.User != "alice" {
				t.Fatalf("B: A's session: %+v %v", s, err)
			}
			if err := a.DeleteSession(ctx, tok); err != nil {
				t.Fatal(err)
			}
			if _, err := b.LookupSession(ctx, tok); !errors.Is(err, ErrNotFound) {
				t.Fatalf("B: session after logout on A: %v", err)
			}

			// B's token table is cached for an hour: a token made on A is
			// unknown to B until the cache is invalidated.
			if err := b.CheckAgentToken(ctx, "smt_aaaaaaaaaaaaaaaa_"+strings.Repeat("a", 52)); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("B: forged token: %v", err)
			}
			rec, secret, err := a.CreateToken(ctx, NewToken{Machine: "m1"})
			if err != nil {
				t.Fatal(err)
			}
			b.InvalidateTokens()
			if _, err := b.VerifyAgent(ctx, secret, "m1"); err != nil {
				t.Fatalf("B: a token made on A: %v", err)
			}
			if err := a.RevokeToken(ctx, rec.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := b.VerifyAgent(ctx, secret, "m1"); err != nil {
				t.Fatalf("B before invalidation: the cached copy answers: %v", err)
			}
			b.InvalidateTokens()
			if _, err := b.VerifyAgent(ctx, secret, "m1"); !errors.Is(err, ErrTokenRevoked) {
				t.Fatalf("B: a token revoked on A: %v", err)
			}
		})
	}
}

// TestStoreDownAnswers503: with the database gone, connected agents keep
// verifying from the token cache, while logins and session checks answer
// 503 with Retry-After (not 500, not 401).
func TestStoreDownAnswers503(t *testing.T) {
	for _, backend := range dbtest.Backends {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			d := dbtest.Open(t, backend)
			st := openStore(t, d, nil, Options{TokenCacheTTL: time.Millisecond})
			if _, err := st.AddUser(ctx, "alice", "alice-password-1", RoleAdmin); err != nil {
				t.Fatal(err)
			}
			_, secret, err := st.CreateToken(ctx, NewToken{Machine: "m1"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.VerifyAgent(ctx, secret, "m1"); err != nil {
				t.Fatal(err)
			}
			sess, _, err := st.CreateSession(ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			h := NewHTTP(HTTPOptions{Store: st})
			mux := http.NewServeMux()
			for _, r := range h.Routes() {
				mux.Handle(r.Pattern, r.Handler)
			}
			srv := h.Middleware(mux)

			d.Close() // the database is gone
			time.Sleep(5 * time.Millisecond)
			if _, err := st.VerifyAgent(ctx, secret, "m1"); err != nil {
				t.Fatalf("a connected agent's token with the database down: %v", err)
			}
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("POST", "/api/auth/login", strings.NewReader(`{"username":"alice","password":"alice-password-1"}`))
			req.Header.Set("Content-Type", "application/json")
			srv.ServeHTTP(rec, req)
			if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "metadata database unavailable") {
				t.Fatalf("login with the database down: %d %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
			}
			rec = httptest.NewRecorder()
			req = httptest.NewRequest("GET", "/api/auth/me", nil)
			req.Header.Set("Authorization", "Bearer "+sess)
			srv.ServeHTTP(rec, req)
			if rec.Code != http.StatusServiceUnavailable {
				t.Fatalf("session check with the database down: %d %s", rec.Code, rec.Body)
			}
		})
	}
}
