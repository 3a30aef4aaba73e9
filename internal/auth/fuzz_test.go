package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/db"
)

func FuzzParseToken(f *testing.F) {
	_, _, tok, _ := newAgentToken()
	f.Add(tok)
	f.Add("smt_aaaaaaaaaaaaaaaa_" + strings.Repeat("a", 52))
	f.Add("smt__")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, secret, err := ParseToken(s)
		if err != nil {
			if id != "" || secret != nil {
				t.Fatalf("error with results: %q %x", id, secret)
			}
			return
		}
		// Accepted tokens have one spelling: re-encoding gives s back.
		if got := tokenPrefix + id + "_" + b32.EncodeToString(secret); got != s || len(secret) != secretBytes || !validTokenID(id) {
			t.Fatalf("ParseToken(%q) = %q, %x: re-encodes to %q", s, id, secret, got)
		}
	})
}

func FuzzParseBearer(f *testing.F) {
	f.Add("Bearer abc")
	f.Add("bearer   abc  ")
	f.Add("Basic abc")
	f.Add("Bearer a b")
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := ParseBearer(h)
		if !ok {
			return
		}
		if tok == "" || strings.ContainsAny(tok, " \t") || !strings.Contains(h, tok) || !strings.EqualFold(h[:7], "bearer ") {
			t.Fatalf("ParseBearer(%q) = %q", h, tok)
		}
	})
}

// FuzzAuthenticate throws arbitrary Authorization and Cookie headers at
// the middleware's authentication: only the real session token may yield
// its user, nothing panics, and every refusal is a 401.
func FuzzAuthenticate(f *testing.F) {
	ctx := context.Background()
	d, err := db.Open(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { d.Close() })
	st, err := Open(ctx, d, Options{})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := st.AddUser(ctx, "root", "password1", RoleAdmin); err != nil {
		f.Fatal(err)
	}
	tok, _, err := st.CreateSession(ctx, "root")
	if err != nil {
		f.Fatal(err)
	}
	a := NewHTTP(HTTPOptions{Store: st})
	f.Add("Bearer "+tok, "")
	f.Add("", CookieName+"="+tok)
	f.Add("Bearer "+tok[:42]+"A", CookieName+"=x; other=y")
	f.Add("Bearer smt_aaaaaaaaaaaaaaaa_"+strings.Repeat("a", 52), "")
	f.Add("", CookieName+"=\"quoted\"; "+CookieName+"="+tok)
	f.Fuzz(func(t *testing.T, authz, cookie string) {
		r := httptest.NewRequest(http.MethodGet, "/api/machines", nil)
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		p, _, aerr := a.authenticate(r)
		if aerr != nil {
			if aerr.status != http.StatusUnauthorized {
				t.Fatalf("status %d for %q %q", aerr.status, authz, cookie)
			}
			return
		}
		if p.User != "root" || p.Anonymous {
			t.Fatalf("principal %+v from %q %q", p, authz, cookie)
		}
		if !strings.Contains(authz, tok) && !strings.Contains(cookie, tok) {
			t.Fatalf("root authenticated without its token: %q %q", authz, cookie)
		}
	})
}

// FuzzAdminBodies sends arbitrary JSON bodies to the login, token and user
// endpoints as an admin: every answer is a JSON 2xx or 4xx, never a 5xx.
func FuzzAdminBodies(f *testing.F) {
	ctx := context.Background()
	d, err := db.Open(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { d.Close() })
	st, err := Open(ctx, d, Options{})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := st.AddUser(ctx, "root", "password1", RoleAdmin); err != nil {
		f.Fatal(err)
	}
	tok, _, err := st.CreateSession(ctx, "root")
	if err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	a := NewHTTP(HTTPOptions{Store: st, Limiter: NewLimiter(time.Now)})
	for _, rt := range a.Routes() {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	h := a.Middleware(mux)
	for _, seed := range []struct{ path, body string }{
		{"/api/auth/login", `{"username":"root","password":"wrong-password"}`},
		{"/api/tokens", `{"machine":"web-1","expires":"30d","name":"n"}`},
		{"/api/tokens", `{"expires":"-1h"}`},
		{"/api/users", `{"username":"v","password":"12345678","role":"viewer"}`},
		{"/api/users", `{"username":"<b>\u0000","password":"x","role":"root"}`},
	} {
		f.Add(seed.path, seed.body)
	}
	f.Fuzz(func(t *testing.T, path, body string) {
		switch path {
		case "/api/auth/login", "/api/tokens", "/api/users":
		default:
			path = "/api/users"
		}
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code >= 500 {
			t.Fatalf("POST %s %q: %d %s", path, body, rec.Code, rec.Body.String())
		}
		if !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			t.Fatalf("POST %s %q: %d answered %q", path, body, rec.Code, rec.Header().Get("Content-Type"))
		}
	})
}
