package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// secResp is one answer of secDo.
type secResp struct {
	code int
	body []byte
	hdr  http.Header
}

// errMsg is the {"error"} of the answer ("" when absent).
func (r secResp) errMsg() string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(r.body, &e)
	return e.Error
}

// secDo sends method url with an optional JSON body and header pairs.
func secDo(t *testing.T, c *http.Client, method, url string, body any, hdr ...string) secResp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return secResp{resp.StatusCode, b, resp.Header}
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// secLogin logs in and returns the session token and CSRF token.
func secLogin(t *testing.T, base, user, password string) (string, string) {
	t.Helper()
	r := secDo(t, nil, "POST", base+"/api/auth/login", map[string]string{"username": user, "password": password})
	var out struct {
		Token string `json:"token"`
		CSRF  string `json:"csrf_token"`
	}
	if r.code != 200 || json.Unmarshal(r.body, &out) != nil || out.Token == "" {
		t.Fatalf("login %s: %d %s", user, r.code, r.body)
	}
	return out.Token, out.CSRF
}

// ingestOne posts one sample for machine with token over HTTP ingest.
func ingestOne(t *testing.T, hub *hubProc, token, machine string) secResp {
	t.Helper()
	body := map[string]any{"machine": machine, "metrics": []map[string]any{{"name": "e2e_probe", "value": 1}}}
	return secDo(t, nil, "POST", "http://"+hub.http+"/api/v1/ingest", body, bearer(token)...)
}

// waitOutput waits until p's output contains s and returns when it saw it.
func waitOutput(t *testing.T, p *proc, timeout time.Duration, s string) time.Time {
	t.Helper()
	testutil.WaitFor(t, timeout, fmt.Sprintf("%s to log %q", p.name, s), func() error {
		if out := p.out.String(); !strings.Contains(out, s) {
			return fmt.Errorf("output so far:\n%s", truncate(out))
		}
		return nil
	})
	return time.Now()
}

// waitRevoked waits for agent to report its token revoked by the hub and
// fails t unless that came within limit of revoked (when what happened).
func waitRevoked(t *testing.T, agent *proc, revoked time.Time, limit time.Duration, what string) {
	t.Helper()
	closed := waitOutput(t, agent, 15*time.Second, "token rejected by hub")
	took := closed.Sub(revoked)
	t.Logf("revoked token: the open stream was closed %s after %s", took.Round(time.Millisecond), what)
	if took > limit {
		t.Errorf("stream closed %s after revocation, want within %s", took, limit)
	}
	if !strings.Contains(agent.out.String(), "token revoked") {
		t.Errorf("agent's message does not say the token was revoked:\n%s", truncate(agent.out.String()))
	}
}

// TestSecurityAgentTokens: agents and HTTP ingest need a valid token; a
// bound token writes as its machine only; a token created with the CLI
// while the hub runs works within seconds; a revoked token's open stream is
// closed within seconds.
func TestSecurityAgentTokens(t *testing.T) {
	t.Parallel()
	hub := startHub(t, t.TempDir(), "", "")
	base := "http://" + hub.http

	// Wrong and missing tokens on gRPC: real agents, refused with a clear
	// message on both sides.
	forged := "smt_aaaaaaaaaaaaaaaa_" + strings.Repeat("a", 52)
	wrong := startAgent(t, hub, "intruder", "--token", forged)
	none := startAgent(t, hub, "tokenless", "--token", "")
	waitOutput(t, wrong, 20*time.Second, "token rejected by hub")
	waitOutput(t, none, 20*time.Second, "no token given")
	waitOutput(t, hub.proc, 5*time.Second, "agent token rejected")
	for _, id := range []string{"intruder", "tokenless"} {
		if code := getJSON(t, base+"/api/machines/"+id, nil); code != 404 {
			t.Errorf("machine %s: status %d, want 404 (never admitted)", id, code)
		}
	}

	// HTTP ingest: wrong token → 401, and logged once however often.
	for range 10 {
		if r := ingestOne(t, hub, forged, "intruder"); r.code != 401 || !strings.Contains(r.errMsg(), "token rejected") {
			t.Fatalf("HTTP ingest with a wrong token: %d %s", r.code, r.body)
		}
	}
	if r := ingestOne(t, hub, "", "intruder"); r.code != 401 {
		t.Fatalf("HTTP ingest without a token: %d", r.code)
	}
	time.Sleep(200 * time.Millisecond)
	if n := strings.Count(hub.out.String(), "ingest token rejected"); n != 1 {
		t.Errorf("11 rejected HTTP ingests logged %d times, want once per remote address", n)
	}

	// A token bound to db-1, created by the CLI while the hub runs.
	created := time.Now()
	var bound struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	out, err := command(t, "token", "create", "--data-dir", hub.dataDir, "--machine", "db-1", "--json").Output()
	if err != nil || json.Unmarshal(out, &bound) != nil || bound.Token == "" {
		t.Fatalf("token create --machine: %v %s", err, out)
	}
	var usable time.Duration
	testutil.WaitFor(t, 10*time.Second, "the new token accepted", func() error {
		if r := ingestOne(t, hub, bound.Token, "db-1"); r.code != 200 {
			return fmt.Errorf("%d %s", r.code, r.body)
		}
		usable = time.Since(created)
		return nil
	})
	t.Logf("token created by the CLI while the hub runs: usable %s after `token create` started", usable.Round(time.Millisecond))

	// Wrong machine: 403 on HTTP, PermissionDenied on gRPC.
	if r := ingestOne(t, hub, bound.Token, "web-9"); r.code != 403 || !strings.Contains(r.errMsg(), "db-1") {
		t.Fatalf("bound token for another machine: %d %s", r.code, r.body)
	}
	impostor := startAgent(t, hub, "web-9", "--token", bound.Token)
	waitOutput(t, impostor, 20*time.Second, "PermissionDenied")

	// The rightful agent streams; revoking its token closes the stream.
	agent := startAgent(t, hub, "db-1", "--token", bound.Token)
	waitOnline(t, hub, "db-1")
	if out, err := command(t, "token", "revoke", bound.ID, "--data-dir", hub.dataDir).CombinedOutput(); err != nil {
		t.Fatalf("token revoke: %v %s", err, out)
	}
	waitRevoked(t, agent, time.Now(), 5*time.Second, "`token revoke` returned")
	if r := ingestOne(t, hub, bound.Token, "db-1"); r.code != 401 {
		t.Fatalf("revoked token on HTTP ingest: %d", r.code)
	}

	// The CLI lists it as revoked, with a last use.
	var list []struct {
		ID       string  `json:"id"`
		Revoked  bool    `json:"revoked"`
		LastUsed *string `json:"last_used"`
	}
	out, err = command(t, "token", "list", "--json", "--data-dir", hub.dataDir).Output()
	if err != nil || json.Unmarshal(out, &list) != nil {
		t.Fatalf("token list: %v %s", err, out)
	}
	found := false
	for _, tk := range list {
		if tk.ID == bound.ID {
			found = tk.Revoked
		}
	}
	if !found || strings.Contains(string(out), bound.Token[21:]) {
		t.Fatalf("token list: %s", out)
	}
}

// TestSecurityHTTPAccess: a hub listening on every interface requires
// login for everything but the probes and the static UI; the first admin's
// password is in a 0600 file; viewers cannot write; cookie writes need the
// CSRF token; repeated failed logins are locked out.
func TestSecurityHTTPAccess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hub := startHub(t, dir, "0.0.0.0:0", "")
	base := "http://127.0.0.1:" + port(t, hub.http)

	for path, want := range map[string]int{"/health": 200, "/ready": 200, "/": 200, "/login": 200, "/app.js": 200, "/ui/css/app.css": 200,
		"/api/machines": 401, "/api/auth/me": 401, "/ws": 401, "/metrics": 401, "/api/export?machine=x": 401} {
		r := secDo(t, nil, "GET", base+path, nil)
		if r.code != want {
			t.Errorf("anonymous GET %s on 0.0.0.0: %d, want %d", path, r.code, want)
		}
		if want == 401 && r.errMsg() == "" {
			t.Errorf("GET %s: 401 without a JSON error: %s", path, r.body)
		}
	}

	// First start: admin's random password, in a 0600 file.
	pwFile := filepath.Join(dir, "admin-password")
	st, err := os.Stat(pwFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, mode %v", pwFile, err, st.Mode().Perm())
	}
	b, _ := os.ReadFile(pwFile)
	adminPW := strings.TrimSpace(string(b))
	adminTok, _ := secLogin(t, base, "admin", adminPW)

	// Admin adds a viewer; the viewer reads but cannot write.
	if r := secDo(t, nil, "POST", base+"/api/users", map[string]string{"username": "vic", "password": "viewer-pass", "role": "viewer"}, bearer(adminTok)...); r.code != 201 {
		t.Fatalf("add viewer: %d %s", r.code, r.body)
	}
	viewTok, _ := secLogin(t, base, "vic", "viewer-pass")
	if r := secDo(t, nil, "GET", base+"/api/machines", nil, bearer(viewTok)...); r.code != 200 {
		t.Fatalf("viewer reads: %d %s", r.code, r.body)
	}
	for _, w := range []struct{ method, path string }{{"POST", "/api/tokens"}, {"DELETE", "/api/users/admin"}, {"PUT", "/api/users/vic"}} {
		if r := secDo(t, nil, w.method, base+w.path, map[string]string{}, bearer(viewTok)...); r.code != 403 || !strings.Contains(r.errMsg(), "admin role required") {
			t.Errorf("viewer %s %s: %d %s", w.method, w.path, r.code, r.body)
		}
	}
	if r := secDo(t, nil, "GET", base+"/api/tokens", nil, bearer(viewTok)...); r.code != 403 {
		t.Errorf("viewer lists tokens: %d", r.code)
	}

	// Cookie session: writes need X-CSRF-Token.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	r := secDo(t, browser, "POST", base+"/api/auth/login", map[string]string{"username": "admin", "password": adminPW}, "Origin", base)
	var login struct {
		CSRF string `json:"csrf_token"`
	}
	if r.code != 200 || json.Unmarshal(r.body, &login) != nil || !strings.Contains(r.hdr.Get("Set-Cookie"), "HttpOnly") {
		t.Fatalf("cookie login: %d %s %v", r.code, r.body, r.hdr)
	}
	if r := secDo(t, browser, "POST", base+"/api/tokens", map[string]string{"name": "x"}); r.code != 403 || r.errMsg() != "missing or invalid CSRF token" {
		t.Fatalf("cookie write without CSRF: %d %s", r.code, r.body)
	}
	if r := secDo(t, browser, "POST", base+"/api/tokens", map[string]string{"name": "x"}, "X-CSRF-Token", login.CSRF); r.code != 201 {
		t.Fatalf("cookie write with CSRF: %d %s", r.code, r.body)
	}
	if r := secDo(t, nil, "POST", base+"/api/auth/login", map[string]string{"username": "admin", "password": adminPW}, "Origin", "http://evil.example"); r.code != 403 {
		t.Fatalf("cross-origin login: %d", r.code)
	}

	// A user added with the CLI while the hub runs logs in; `user passwd`
	// ends their sessions.
	cmd := command(t, "user", "add", "carol", "--role", "admin", "--password-stdin", "--data-dir", dir)
	cmd.Stdin = strings.NewReader("carol-password\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("user add: %v %s", err, out)
	}
	carolTok, _ := secLogin(t, base, "carol", "carol-password")
	cmd = command(t, "user", "passwd", "carol", "--password-stdin", "--data-dir", dir)
	cmd.Stdin = strings.NewReader("carol-password-2\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("user passwd: %v %s", err, out)
	}
	if r := secDo(t, nil, "GET", base+"/api/machines", nil, bearer(carolTok)...); r.code != 401 {
		t.Fatalf("session after a password change: %d", r.code)
	}

	// Lock-out: five failures, then even the right password gets 429.
	for i := range 5 {
		if r := secDo(t, nil, "POST", base+"/api/auth/login", map[string]string{"username": "admin", "password": "guess"}); r.code != 401 {
			t.Fatalf("failure %d: %d %s", i+1, r.code, r.body)
		}
	}
	r = secDo(t, nil, "POST", base+"/api/auth/login", map[string]string{"username": "admin", "password": adminPW})
	if r.code != 429 || r.hdr.Get("Retry-After") == "" {
		t.Fatalf("login during lock-out: %d Retry-After %q %s", r.code, r.hdr.Get("Retry-After"), r.body)
	}
	if !strings.Contains(hub.out.String(), "login failed") {
		t.Error("failed logins are not logged")
	}
}

// TestSecurityLoopbackAndUp: on loopback anonymous access reads but never
// writes; `up` mode's own agent needs no token, while other agents do.
func TestSecurityLoopbackAndUp(t *testing.T) {
	t.Parallel()
	hub := startHub(t, t.TempDir(), "", "")
	base := "http://" + hub.http
	if r := secDo(t, nil, "GET", base+"/api/auth/me", nil); r.code != 200 || !strings.Contains(string(r.body), `"anonymous":true`) {
		t.Fatalf("anonymous me on loopback: %d %s", r.code, r.body)
	}
	if r := secDo(t, nil, "POST", base+"/api/tokens", map[string]string{}); r.code != 401 || !strings.Contains(r.errMsg(), "log in") {
		t.Fatalf("anonymous write on loopback: %d %s", r.code, r.body)
	}

	dir := t.TempDir()
	up := start(t, "up", "up", "--listen-http", "127.0.0.1:0", "--listen-grpc", "127.0.0.1:0", "--data-dir", dir, "--machine-id", "upbox",
		"--interval", "250ms", "--push-socket", "", "--log-level", "debug")
	httpAddr, grpcAddr := hubAddrs(t, up, 20*time.Second)
	upHub := &hubProc{proc: up, http: httpAddr, grpc: grpcAddr, dataDir: dir}
	testutil.WaitFor(t, 20*time.Second, "up ready", func() error {
		code, err := httpGet("http://" + httpAddr + "/ready")
		if err == nil && code != 200 {
			err = fmt.Errorf("status %d", code)
		}
		return err
	})
	waitOnline(t, upHub, "upbox")
	stranger := startAgent(t, upHub, "upbox", "--token", "")
	waitOutput(t, stranger, 20*time.Second, "token rejected by hub")
	if _, err := os.Stat(filepath.Join(dir, "admin-password")); err != nil {
		t.Errorf("up's first start wrote no admin password: %v", err)
	}
}

// TestBrowserLoginAndAdmin drives the login and admin pages in Chromium
// against a hub that requires login: a wrong password is refused on the
// page, the right one lands on ?next=; the admin creates an agent token
// (shown once, usable at once; its markup-like name stays text), revokes
// it, adds a user and changes their role, then logs out.
func TestBrowserLoginAndAdmin(t *testing.T) {
	t.Parallel()
	b := newBrowser(t, 1300, 900, 120*time.Second)
	dir := t.TempDir()
	hub := startHub(t, dir, "0.0.0.0:0", "")
	hub.http = "127.0.0.1:" + port(t, hub.http)
	base := "http://" + hub.http
	pw, err := os.ReadFile(filepath.Join(dir, "admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	adminPW := strings.TrimSpace(string(pw))

	b.run("open admin", chromedp.Navigate(base+"/admin"))
	b.waitJS(10*time.Second, "admin page asks to log in", `document.querySelector('.admin-page a[href^="/login"]')`)
	b.waitJS(5*time.Second, "header Log in link", `document.querySelector('#session a') && document.querySelector('#session a').textContent === "Log in"`)
	if js[bool](b, `!document.getElementById("nav-admin").hidden`) {
		t.Fatal("Admin link shown to a visitor")
	}

	b.run("open login", chromedp.Navigate(base+"/login?next=%2Fadmin"))
	b.waitJS(10*time.Second, "login form", `document.querySelector('main form input[type="password"]')`)
	b.run("wrong password",
		typeInto(chromedp.CSS(`main form input[name="username"]`), "admin"),
		typeInto(chromedp.CSS(`main form input[type="password"]`), "not-the-password\r"))
	b.waitJS(10*time.Second, "error shown", `document.querySelector('.auth-error').textContent === "Wrong username or password."`)
	b.run("right password", typeInto(chromedp.CSS(`main form input[type="password"]`), adminPW+"\r"))
	b.waitJS(10*time.Second, "on /admin", `location.pathname === "/admin" && document.getElementById("token-form")`)
	b.waitJS(5*time.Second, "header shows the user", `document.querySelector('#session .session-user') && document.querySelector('#session .session-user').textContent === "admin (admin)"`)
	if !js[bool](b, `!document.getElementById("nav-admin").hidden`) {
		t.Fatal("Admin link hidden from an admin")
	}

	// A token with a markup-like name, bound to m1.
	const evil = `<img src=x onerror=alert(1)>`
	b.run("fill token form",
		typeInto(chromedp.CSS(`#token-form input[aria-label="Name"]`), evil),
		typeInto(chromedp.CSS(`#token-form input[aria-label="Machine id"]`), "m1"))
	b.run("create token", chromedp.Click(chromedp.CSS(`#token-form button[type="submit"]`)))
	b.waitJS(10*time.Second, "token shown once", `document.getElementById("new-token") && document.getElementById("new-token").value.startsWith("smt_")`)
	tok := js[string](b, `document.getElementById("new-token").value`)
	if r := ingestOne(t, hub, tok, "m1"); r.code != 200 {
		t.Fatalf("token from the admin page: %d %s", r.code, r.body)
	}
	b.waitJS(5*time.Second, "token row", `[...document.querySelectorAll('#tokens-table tbody tr')].some(tr => tr.children[1].textContent === `+jsString(evil)+`)`)
	if n := js[int](b, `document.querySelectorAll('#tokens-table img').length`); n != 0 {
		t.Fatalf("token name became markup: %d img elements", n)
	}
	id := strings.SplitN(strings.TrimPrefix(tok, "smt_"), "_", 2)[0]
	row := `document.querySelector('#tokens-table tr[data-token="` + id + `"]')`
	b.exec("revoke (arm)", row+`.querySelector('button.danger').click()`)
	b.exec("revoke (confirm)", row+`.querySelector('button.danger').click()`)
	b.waitJS(10*time.Second, "revoked", row+` && `+row+`.querySelector('.tok-state').textContent === "revoked"`)
	if r := ingestOne(t, hub, tok, "m1"); r.code != 401 {
		t.Fatalf("revoked token: %d", r.code)
	}

	// A user, added as viewer and promoted.
	b.run("fill user form",
		typeInto(chromedp.CSS(`#user-form input[aria-label="Username"]`), "vi"),
		typeInto(chromedp.CSS(`#user-form input[aria-label="Password"]`), "vi-password"))
	b.run("add user", chromedp.Click(chromedp.CSS(`#user-form button[type="submit"]`)))
	userRow := `document.querySelector('#users-table tr[data-user="vi"]')`
	b.waitJS(10*time.Second, "user row", userRow+` && `+userRow+`.querySelector('select').value === "viewer"`)
	b.exec("promote", `(() => { const s = `+userRow+`.querySelector('select'); s.value = "admin"; s.dispatchEvent(new Event("change")); })()`)
	b.waitJS(10*time.Second, "promoted", `document.querySelector('.admin-flash').textContent === "vi is now admin."`)
	viTok, _ := secLogin(t, base, "vi", "vi-password")
	if r := secDo(t, nil, "GET", base+"/api/users", nil, bearer(viTok)...); r.code != 200 {
		t.Fatalf("promoted user lists users: %d", r.code)
	}

	b.run("log out", chromedp.Click(chromedp.CSS(`#session button`)))
	b.waitJS(10*time.Second, "on /login", `location.pathname === "/login"`)
	if code := js[int](b, `fetch("/api/auth/me").then(r => r.status)`); code != 401 {
		t.Fatalf("me after logout: %d", code)
	}
	b.checkClean()
}
