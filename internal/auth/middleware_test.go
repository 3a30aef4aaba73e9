package auth

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// testServer is the auth middleware in front of the auth API plus
// recording stand-ins for the hub's other handlers: each answers 200 with
// the principal it was given.
type testServer struct {
	*httptest.Server
	store *Store
	clk   *clock
	auth  *HTTP
}

func newTestServer(t *testing.T, opts HTTPOptions) *testServer {
	t.Helper()
	d, _ := openDB(t)
	clk := newClock()
	st := openStore(t, d, clk, Options{})
	opts.Store = st
	if opts.Limiter == nil {
		opts.Limiter = NewLimiter(clk.Now)
	}
	a := NewHTTP(opts)
	mux := http.NewServeMux()
	for _, rt := range a.Routes() {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	echo := func(w http.ResponseWriter, r *http.Request) {
		p, ok := FromContext(r.Context())
		writeJSON(w, http.StatusOK, map[string]any{"ok": ok, "user": p.User, "role": p.Role, "anonymous": p.Anonymous, "session": p.Session})
	}
	for _, pat := range []string{"GET /health", "GET /ready", "GET /metrics", "GET /api/machines", "GET /ws", "POST /api/rules",
		"DELETE /api/rules/{id}", "POST /api/v1/ingest", "POST /api/v1/query", "GET /ui/{path...}", "GET /{$}", "GET /machines/{id}", "GET /login", "GET /explore"} {
		mux.HandleFunc(pat, echo)
	}
	srv := httptest.NewServer(a.Middleware(mux))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	if _, err := st.AddUser(ctx, "root", "admin-password", RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddUser(ctx, "vera", "viewer-password", RoleViewer); err != nil {
		t.Fatal(err)
	}
	return &testServer{Server: srv, store: st, clk: clk, auth: a}
}

// session logs user in directly on the store: token and CSRF token.
func (s *testServer) session(t *testing.T, user string) (string, string) {
	t.Helper()
	tok, sess, err := s.store.CreateSession(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	return tok, sess.CSRF
}

// do sends a request with header pairs ("Name", "value", …) and returns
// the status and the decoded JSON body.
func (s *testServer) do(t *testing.T, method, path, body string, hdr ...string) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(b) > 0 && b[0] == '{' {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: body %q is not a JSON object", method, path, b)
		}
	}
	return resp.StatusCode, m, resp.Header
}

func TestMiddlewareDecisionTable(t *testing.T) {
	for _, loopback := range []bool{true, false} {
		s := newTestServer(t, HTTPOptions{AnonymousRead: loopback})
		adminTok, adminCSRF := s.session(t, "root")
		viewTok, viewCSRF := s.session(t, "vera")
		_, _, agentTok, _ := newAgentToken()
		forged := flipFirst(adminTok)
		bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
		cookie := func(tok string, csrf ...string) []string {
			h := []string{"Cookie", CookieName + "=" + tok}
			if len(csrf) > 0 {
				h = append(h, CSRFHeader, csrf[0])
			}
			return h
		}
		// anonLoop is the loopback answer for a credential-less read.
		anonRead, redirect := 401, 401
		if loopback {
			anonRead, redirect = 200, http.StatusTemporaryRedirect // the mux cleans the path
		}
		cases := []struct {
			name         string
			method, path string
			hdr          []string
			want         int
			wantUser     string // "" = do not check
			wantErr      string // substring of {"error"}
		}{
			{"health", "GET", "/health", nil, 200, "", ""},
			{"ready", "GET", "/ready", nil, 200, "", ""},
			{"ui asset", "GET", "/ui/css/app.css", nil, 200, "", ""},
			{"index", "GET", "/", nil, 200, "", ""},
			{"machine page", "GET", "/machines/web-1", nil, 200, "", ""},
			{"login page", "GET", "/login", nil, 200, "", ""},
			{"explore page", "GET", "/explore", nil, 200, "", ""},
			{"explore page POST", "POST", "/explore", nil, 401, "", ""},
			{"traversal is not public", "GET", "/ui/../api/machines", nil, redirect, "", ""},
			{"api anonymous", "GET", "/api/machines", nil, anonRead, "", ""},
			{"ws anonymous", "GET", "/ws", nil, anonRead, "", ""},
			{"metrics anonymous", "GET", "/metrics", nil, anonRead, "", ""},
			{"write anonymous", "POST", "/api/rules", nil, 401, "", "log in"},
			{"ingest passes to its own auth", "POST", "/api/v1/ingest", nil, 200, "", ""},
			{"viewer bearer reads", "GET", "/api/machines", bearer(viewTok), 200, "vera", ""},
			{"viewer bearer writes", "POST", "/api/rules", bearer(viewTok), 403, "", "admin role required"},
			{"viewer cookie writes with csrf", "POST", "/api/rules", cookie(viewTok, viewCSRF), 403, "", "admin role required"},
			{"admin bearer writes without csrf", "POST", "/api/rules", bearer(adminTok), 200, "root", ""},
			{"admin bearer deletes", "DELETE", "/api/rules/1", bearer(adminTok), 200, "root", ""},
			{"admin cookie reads", "GET", "/api/machines", cookie(adminTok), 200, "root", ""},
			{"admin cookie writes without csrf", "POST", "/api/rules", cookie(adminTok), 403, "", "missing or invalid CSRF token"},
			{"admin cookie writes with wrong csrf", "POST", "/api/rules", cookie(adminTok, viewCSRF), 403, "", "missing or invalid CSRF token"},
			{"admin cookie writes with csrf", "POST", "/api/rules", cookie(adminTok, adminCSRF), 200, "root", ""},
			{"read-only POST query as viewer", "POST", "/api/v1/query", bearer(viewTok), 200, "vera", ""},
			{"invalid bearer", "GET", "/api/machines", bearer(forged), 401, "", "invalid or expired token"},
			{"malformed authorization", "GET", "/api/machines", []string{"Authorization", "Token cm9vdDpwdw=="}, 401, "", "malformed Authorization"},
			{"stale cookie", "GET", "/api/machines", cookie(forged), anonRead, "", ""},
			{"agent token is no API credential", "GET", "/api/machines", bearer(agentTok), anonRead, "", ""},
			{"tokens api as viewer", "GET", "/api/tokens", bearer(viewTok), 403, "", "admin role required"},
			{"tokens api as admin", "GET", "/api/tokens", bearer(adminTok), 0, "", ""},
			{"users api anonymous", "GET", "/api/users", nil, 401, "", ""},
			{"me anonymous", "GET", "/api/auth/me", nil, anonRead, "", ""},
		}
		for _, c := range cases {
			code, body, _ := s.do(t, c.method, c.path, "", c.hdr...)
			want := c.want
			if want == 0 {
				want = 200
			}
			if code != want {
				t.Errorf("loopback=%v %s (%s %s): status %d, want %d; body %v", loopback, c.name, c.method, c.path, code, want, body)
				continue
			}
			if c.wantUser != "" && body["user"] != c.wantUser {
				t.Errorf("loopback=%v %s: user %v, want %s", loopback, c.name, body["user"], c.wantUser)
			}
			if c.wantErr != "" && !strings.Contains(asString(body["error"]), c.wantErr) {
				t.Errorf("loopback=%v %s: error %q lacks %q", loopback, c.name, body["error"], c.wantErr)
			}
			if code == 200 && c.path == "/api/machines" && c.hdr == nil && body["anonymous"] != true {
				t.Errorf("loopback=%v %s: principal %v, want anonymous", loopback, c.name, body)
			}
		}
	}
}

// flipFirst changes the first character of a token.
func flipFirst(tok string) string {
	if tok[0] == 'x' {
		return "y" + tok[1:]
	}
	return "x" + tok[1:]
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}

func TestMetricsPublic(t *testing.T) {
	s := newTestServer(t, HTTPOptions{MetricsPublic: true})
	if code, _, _ := s.do(t, "GET", "/metrics", ""); code != 200 {
		t.Fatalf("/metrics with --metrics-public: %d", code)
	}
	if code, _, _ := s.do(t, "GET", "/api/machines", ""); code != 401 {
		t.Fatalf("/api/machines: %d", code)
	}
}

func TestCookieSessionHasSessionFlag(t *testing.T) {
	s := newTestServer(t, HTTPOptions{})
	tok, _ := s.session(t, "vera")
	_, body, _ := s.do(t, "GET", "/api/machines", "", "Cookie", CookieName+"="+tok)
	if body["session"] != true || body["role"] != "viewer" {
		t.Fatalf("cookie principal %v", body)
	}
	_, body, _ = s.do(t, "GET", "/api/machines", "", "Authorization", "bearer "+tok)
	if body["session"] != false || body["user"] != "vera" {
		t.Fatalf("bearer principal %v", body)
	}
}
