package auth

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"
)

// browser is an HTTP client with a cookie jar, like the dashboard.
type browser struct {
	t    *testing.T
	c    *http.Client
	base string
	csrf string
}

func newBrowser(t *testing.T, s *testServer) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar}, base: s.URL}
}

func (b *browser) do(method, path string, body any) (int, []byte, http.Header) {
	b.t.Helper()
	var r io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		r = strings.NewReader(string(j))
	}
	req, _ := http.NewRequest(method, b.base+path, r)
	req.Header.Set("Content-Type", "application/json")
	if b.csrf != "" {
		req.Header.Set(CSRFHeader, b.csrf)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out, resp.Header
}

func TestLoginCookieCSRFLogout(t *testing.T) {
	s := newTestServer(t, HTTPOptions{})
	b := newBrowser(t, s)
	if code, _, _ := b.do("GET", "/api/auth/me", nil); code != 401 {
		t.Fatalf("me before login: %d", code)
	}
	code, body, hdr := b.do("POST", "/api/auth/login", map[string]string{"username": "root", "password": "admin-password"})
	if code != 200 {
		t.Fatalf("login: %d %s", code, body)
	}
	var lr struct {
		Token, User, Role, CSRF string
		Expires                 time.Time `json:"expires_at"`
	}
	json.Unmarshal(body, &lr)
	var raw map[string]any
	json.Unmarshal(body, &raw)
	lr.CSRF, _ = raw["csrf_token"].(string)
	if lr.User != "root" || lr.Role != "admin" || len(lr.Token) != 43 || lr.CSRF == "" || !lr.Expires.Equal(s.clk.Now().Add(DefaultSessionIdle)) {
		t.Fatalf("login response %s", body)
	}
	c := hdr.Get("Set-Cookie")
	for _, want := range []string{CookieName + "=" + lr.Token, "HttpOnly", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(c, want) {
			t.Errorf("Set-Cookie %q lacks %q", c, want)
		}
	}
	if strings.Contains(c, "Secure") {
		t.Errorf("Secure cookie over plain HTTP: %q", c)
	}
	code, body, _ = b.do("GET", "/api/auth/me", nil)
	if code != 200 || !strings.Contains(string(body), `"user":"root"`) || !strings.Contains(string(body), `"csrf_token":"`+lr.CSRF+`"`) || !strings.Contains(string(body), `"anonymous":false`) {
		t.Fatalf("me: %d %s", code, body)
	}
	// Cookie writes need the CSRF header.
	if code, body, _ := b.do("POST", "/api/tokens", map[string]string{}); code != 403 || !strings.Contains(string(body), "CSRF") {
		t.Fatalf("write without CSRF: %d %s", code, body)
	}
	b.csrf = lr.CSRF
	if code, body, _ := b.do("POST", "/api/tokens", map[string]string{"name": "n"}); code != 201 {
		t.Fatalf("write with CSRF: %d %s", code, body)
	}
	// The same token as a bearer works everywhere, without CSRF.
	if code, _, _ := s.do(t, "POST", "/api/tokens", "{}", "Authorization", "Bearer "+lr.Token); code != 201 {
		t.Fatalf("bearer write: %d", code)
	}
	if code, _, _ := b.do("POST", "/api/auth/logout", nil); code != 204 {
		t.Fatalf("logout: %d", code)
	}
	if _, err := s.store.LookupSession(context.Background(), lr.Token); err == nil {
		t.Fatal("session survives logout")
	}
	if code, _, _ := s.do(t, "GET", "/api/auth/me", "", "Authorization", "Bearer "+lr.Token); code != 401 {
		t.Fatalf("bearer after logout: %d", code)
	}
}

func TestLoginRejections(t *testing.T) {
	s := newTestServer(t, HTTPOptions{})
	f := func(body string, hdr []string, want int, wantErr string) {
		t.Helper()
		code, m, _ := s.do(t, "POST", "/api/auth/login", body, hdr...)
		if code != want || !strings.Contains(asString(m["error"]), wantErr) {
			t.Errorf("login %s %v: %d %v, want %d %q", body, hdr, code, m, want, wantErr)
		}
	}
	ok := `{"username":"root","password":"admin-password"}`
	f(ok, []string{"Origin", "https://evil.example"}, 403, "cross-origin")
	f(ok, []string{"Origin", "null"}, 403, "cross-origin")
	f(ok, []string{"Origin", s.URL}, 200, "")
	f(`{"username":"root"}`, nil, 400, "required")
	f(`{"username":"root","password":"x","extra":1}`, nil, 400, "unknown field")
	f(`[`, nil, 400, "invalid JSON")
	f(`{"username":"root","password":"`+strings.Repeat("x", 20000)+`"}`, nil, 413, "larger than")
	f(ok, []string{"Content-Type", "text/plain"}, 415, "application/json")
	f(`{"username":"root","password":"wrong-password"}`, nil, 401, "wrong username or password")
	f(`{"username":"nobody","password":"wrong-password"}`, nil, 401, "wrong username or password")
}

func TestLoginLockout(t *testing.T) {
	s := newTestServer(t, HTTPOptions{})
	bad := `{"username":"root","password":"guess"}`
	for i := 1; i <= LockoutThreshold; i++ {
		if code, _, _ := s.do(t, "POST", "/api/auth/login", bad); code != 401 {
			t.Fatalf("failure %d: %d", i, code)
		}
	}
	// Locked: even the right password is refused, with Retry-After.
	code, m, hdr := s.do(t, "POST", "/api/auth/login", `{"username":"root","password":"admin-password"}`)
	if code != 429 || hdr.Get("Retry-After") != "1" || !strings.Contains(asString(m["error"]), "too many failed logins") {
		t.Fatalf("during lock-out: %d %v Retry-After %q", code, m, hdr.Get("Retry-After"))
	}
	s.clk.Add(time.Second)
	if code, _, _ := s.do(t, "POST", "/api/auth/login", bad); code != 401 {
		t.Fatalf("after the lock: %d", code)
	}
	if code, _, hdr := s.do(t, "POST", "/api/auth/login", bad); code != 429 || hdr.Get("Retry-After") != "2" {
		t.Fatalf("second lock: %d %q", code, hdr.Get("Retry-After"))
	}
	s.clk.Add(2 * time.Second)
	if code, _, _ := s.do(t, "POST", "/api/auth/login", `{"username":"root","password":"admin-password"}`); code != 200 {
		t.Fatalf("after the second lock: %d", code)
	}
}

func TestTokenAPI(t *testing.T) {
	s := newTestServer(t, HTTPOptions{})
	tok, _ := s.session(t, "root")
	auth := []string{"Authorization", "Bearer " + tok}
	code, m, _ := s.do(t, "POST", "/api/tokens", `{"machine":"db-1","expires":"30d","name":"db"}`, auth...)
	if code != 201 || !strings.HasPrefix(asString(m["token"]), "smt_") || m["machine"] != "db-1" || m["expires"] == nil || m["id"] == "" {
		t.Fatalf("create: %d %v", code, m)
	}
	id, secret := asString(m["id"]), asString(m["token"])
	if _, err := s.store.VerifyAgent(context.Background(), secret, "db-1"); err != nil {
		t.Fatalf("created token: %v", err)
	}
	for _, bad := range []string{`{"expires":"soon"}`, `{"machine":"a\u0000b"}`, `{"name":"` + strings.Repeat("n", 201) + `"}`, `{"secret":"x"}`} {
		if code, m, _ := s.do(t, "POST", "/api/tokens", bad, auth...); code != 400 {
			t.Errorf("create %s: %d %v", bad, code, m)
		}
	}
	req, _ := http.NewRequest("GET", s.URL+"/api/tokens", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	listBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(listBody), secret[21:]) || strings.Contains(string(listBody), `"token"`) || !strings.Contains(string(listBody), `"id":"`+id+`"`) {
		t.Fatalf("list leaks secrets or lacks the token: %s", listBody)
	}
	if code, _, _ := s.do(t, "DELETE", "/api/tokens/"+id, "", auth...); code != 204 {
		t.Fatalf("revoke: %d", code)
	}
	if code, m, _ := s.do(t, "DELETE", "/api/tokens/nope", "", auth...); code != 404 {
		t.Fatalf("revoke unknown: %d %v", code, m)
	}
}

func TestUserAPI(t *testing.T) {
	s := newTestServer(t, HTTPOptions{})
	tok, _ := s.session(t, "root")
	auth := []string{"Authorization", "Bearer " + tok}
	f := func(method, path, body string, want int, wantErr string) map[string]any {
		t.Helper()
		code, m, _ := s.do(t, method, path, body, auth...)
		if code != want || !strings.Contains(asString(m["error"]), wantErr) {
			t.Errorf("%s %s %s: %d %v, want %d %q", method, path, body, code, m, want, wantErr)
		}
		return m
	}
	m := f("POST", "/api/users", `{"username":"ann","password":"ann-password","role":"viewer"}`, 201, "")
	if m["username"] != "ann" || m["role"] != "viewer" || m["password"] != nil || m["password_hash"] != nil {
		t.Fatalf("created user %v", m)
	}
	f("POST", "/api/users", `{"username":"ann","password":"ann-password"}`, 409, "already exists")
	f("POST", "/api/users", `{"username":"bob","password":"short"}`, 400, "at least 8")
	f("POST", "/api/users", `{"username":"bob","password":"long-enough","role":"root"}`, 400, "want admin or viewer")
	f("POST", "/api/users", `{"username":"b b","password":"long-enough"}`, 400, "username")
	f("PUT", "/api/users/ann", `{"role":"admin"}`, 200, "")
	f("PUT", "/api/users/ann", `{"password":"new-password"}`, 200, "")
	f("PUT", "/api/users/ann", `{}`, 400, "nothing to change")
	f("PUT", "/api/users/ghost", `{"role":"admin"}`, 404, "not found")
	f("PUT", "/api/users/ann", `{"role":"viewer"}`, 200, "")
	f("PUT", "/api/users/root", `{"role":"viewer"}`, 409, "last admin")
	f("DELETE", "/api/users/root", ``, 409, "last admin")
	f("DELETE", "/api/users/vera", ``, 204, "")
	f("DELETE", "/api/users/vera", ``, 404, "not found")
	if _, err := s.store.CheckPassword(context.Background(), "ann", "new-password"); err != nil {
		t.Fatalf("password change: %v", err)
	}
}

func TestLogout(t *testing.T) {
	s := newTestServer(t, HTTPOptions{})
	tok, csrf := s.session(t, "vera")
	cookie := []string{"Cookie", CookieName + "=" + tok}
	if code, m, _ := s.do(t, "POST", "/api/auth/logout", "", cookie...); code != 403 || !strings.Contains(asString(m["error"]), "CSRF") {
		t.Fatalf("cookie logout without CSRF: %d %v", code, m)
	}
	code, _, hdr := s.do(t, "POST", "/api/auth/logout", "", append(cookie, CSRFHeader, csrf)...)
	if code != 204 || !strings.Contains(hdr.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("cookie logout: %d %q", code, hdr.Get("Set-Cookie"))
	}
	if _, err := s.store.LookupSession(context.Background(), tok); err == nil {
		t.Fatal("session survives logout")
	}
	// A stale cookie, or none, still gets its cookie cleared (not 401).
	if code, _, hdr := s.do(t, "POST", "/api/auth/logout", "", cookie...); code != 204 || !strings.Contains(hdr.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("stale cookie logout: %d", code)
	}
	if code, _, _ := s.do(t, "POST", "/api/auth/logout", ""); code != 204 {
		t.Fatalf("logout without a session: %d", code)
	}
	tok2, _ := s.session(t, "vera")
	if code, _, _ := s.do(t, "POST", "/api/auth/logout", "", "Authorization", "Bearer "+tok2); code != 204 {
		t.Fatalf("bearer logout: %d", code)
	}
	if _, err := s.store.LookupSession(context.Background(), tok2); err == nil {
		t.Fatal("bearer session survives logout")
	}
}
