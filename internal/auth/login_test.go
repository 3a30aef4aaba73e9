package auth

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// heldChecks wraps a test server's password check: each check counts,
// then waits for release before it runs the real one.
type heldChecks struct {
	release    chan struct{}
	entered    atomic.Int32 // checks started
	running    atomic.Int32 // checks started and not returned
	maxRunning atomic.Int32 // most checks running at once
}

func holdChecks(s *testServer) *heldChecks {
	h := &heldChecks{release: make(chan struct{})}
	check := s.auth.check
	s.auth.check = func(ctx context.Context, name, password string) (User, error) {
		h.entered.Add(1)
		n := h.running.Add(1)
		defer h.running.Add(-1)
		for {
			m := h.maxRunning.Load()
			if n <= m || h.maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		<-h.release
		return check(ctx, name, password)
	}
	return h
}

// loginAt sends a login for user from the client address addr
// ("host:port") straight to the server's handler.
func (s *testServer) loginAt(addr, user, password string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/api/auth/login", strings.NewReader(`{"username":"`+user+`","password":"`+password+`"}`))
	r.RemoteAddr = addr
	rec := httptest.NewRecorder()
	s.Config.Handler.ServeHTTP(rec, r)
	return rec
}

// storm sends n logins at once, login(i) each, and releases the held
// checks once every login is either being checked or answered. It
// returns the answers.
func storm(t *testing.T, held *heldChecks, n int, login func(i int) *httptest.ResponseRecorder) []*httptest.ResponseRecorder {
	t.Helper()
	answers := make(chan *httptest.ResponseRecorder, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers <- login(i)
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for int(held.entered.Load())+len(answers) < n {
		if time.Now().After(deadline) {
			close(held.release)
			t.Fatalf("after 30 s: %d checks started, %d answers, of %d logins", held.entered.Load(), len(answers), n)
		}
		time.Sleep(time.Millisecond)
	}
	close(held.release)
	wg.Wait()
	close(answers)
	var out []*httptest.ResponseRecorder
	for a := range answers {
		out = append(out, a)
	}
	return out
}

// TestLoginConcurrentGuesses: 30 wrong logins for one user from one
// address at once get at most LockoutThreshold password checks; the rest
// are refused with 429 and Retry-After before any check. (Old code
// checked the lock before bcrypt and counted the failure after: 30 checks,
// 30 × 401.)
func TestLoginConcurrentGuesses(t *testing.T) {
	s := newTestServer(t, HTTPOptions{MaxPasswordChecks: 64})
	held := holdChecks(s)
	const n = 30
	answers := storm(t, held, n, func(int) *httptest.ResponseRecorder {
		return s.loginAt("192.0.2.1:40000", "root", "wrong-password")
	})
	codes := map[int]int{}
	for _, a := range answers {
		codes[a.Code]++
		if a.Code == http.StatusTooManyRequests && a.Header().Get("Retry-After") != "1" {
			t.Errorf("429 with Retry-After %q, want 1: %s", a.Header().Get("Retry-After"), a.Body)
		}
	}
	checks := int(held.entered.Load())
	if checks > LockoutThreshold || codes[401] != checks || codes[429] != n-checks {
		t.Fatalf("%d concurrent wrong logins: %d password checks, answers %v; want at most %d checks, the rest 429", n, checks, codes, LockoutThreshold)
	}
	// The guesses that were checked locked the address out: the right
	// password is refused too.
	if a := s.loginAt("192.0.2.1:40001", "root", "admin-password"); a.Code != http.StatusTooManyRequests || a.Header().Get("Retry-After") == "" {
		t.Fatalf("right password after the storm: %d %s", a.Code, a.Body)
	}
}

// TestLoginChecksAreBounded: logins for unknown users from many addresses
// (which no lock-out stops) never run more password checks at once than
// MaxPasswordChecks; the overflow waits a little, then gets 503 with
// Retry-After. (Old code ran them all at once.)
func TestLoginChecksAreBounded(t *testing.T) {
	const slots = 2
	s := newTestServer(t, HTTPOptions{MaxPasswordChecks: slots, PasswordCheckWait: 50 * time.Millisecond})
	held := holdChecks(s)
	const n = 40
	answers := storm(t, held, n, func(i int) *httptest.ResponseRecorder {
		return s.loginAt(fmt.Sprintf("198.51.100.%d:40000", i+1), fmt.Sprintf("ghost-%d", i), "wrong-password")
	})
	codes := map[int]int{}
	for _, a := range answers {
		codes[a.Code]++
		if a.Code == http.StatusServiceUnavailable && (a.Header().Get("Retry-After") != "1" || !strings.Contains(a.Body.String(), "try again")) {
			t.Errorf("503 %q Retry-After %q", a.Body, a.Header().Get("Retry-After"))
		}
	}
	if m := held.maxRunning.Load(); m > slots || codes[401] != int(held.entered.Load()) || codes[503] != n-codes[401] {
		t.Fatalf("%d concurrent logins: at most %d checks at once (limit %d), answers %v", n, m, slots, codes)
	}
	// The slots are free again: a login goes through.
	if a := s.loginAt("203.0.113.1:40000", "root", "admin-password"); a.Code != http.StatusOK {
		t.Fatalf("login after the storm: %d %s", a.Code, a.Body)
	}
}

// TestLoginWaitsForAFreeCheck: a login that finds every check busy waits
// for one (up to PasswordCheckWait) instead of failing at once.
func TestLoginWaitsForAFreeCheck(t *testing.T) {
	s := newTestServer(t, HTTPOptions{MaxPasswordChecks: 1, PasswordCheckWait: time.Minute})
	held := holdChecks(s)
	first := make(chan int, 1)
	go func() { first <- s.loginAt("192.0.2.1:1", "vera", "viewer-password").Code }()
	for held.entered.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	second := make(chan int, 1)
	go func() { second <- s.loginAt("192.0.2.2:1", "root", "admin-password").Code }()
	for s.auth.gate.queued.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(held.release)
	if a, b := <-first, <-second; a != 200 || b != 200 {
		t.Fatalf("logins %d and %d, want 200 and 200", a, b)
	}
	if m := held.maxRunning.Load(); m != 1 {
		t.Fatalf("%d checks at once, limit 1", m)
	}
}

// TestLoginLockoutSparesKnownAddress: guessing root's password from
// elsewhere locks root out at new addresses, not at the address root
// logged in from before. (Old code locked the user name everywhere.)
func TestLoginLockoutSparesKnownAddress(t *testing.T) {
	s := newTestServer(t, HTTPOptions{})
	if a := s.loginAt("192.0.2.10:5000", "root", "admin-password"); a.Code != 200 {
		t.Fatalf("first login: %d %s", a.Code, a.Body)
	}
	for i := range LockoutThreshold {
		if a := s.loginAt(fmt.Sprintf("198.51.100.%d:6000", i+1), "root", "guess"); a.Code != 401 {
			t.Fatalf("guess %d: %d %s", i+1, a.Code, a.Body)
		}
	}
	if a := s.loginAt("198.51.100.99:6000", "root", "admin-password"); a.Code != 429 || a.Header().Get("Retry-After") == "" {
		t.Fatalf("right password from a new address while root is locked: %d %s", a.Code, a.Body)
	}
	if a := s.loginAt("192.0.2.10:5001", "root", "admin-password"); a.Code != 200 {
		t.Fatalf("root at its known-good address while locked elsewhere: %d %s", a.Code, a.Body)
	}
	// That login did not lift the lock for the others.
	if a := s.loginAt("203.0.113.7:6000", "root", "admin-password"); a.Code != 429 {
		t.Fatalf("root from a new address after a login at the known one: %d %s", a.Code, a.Body)
	}
}

// TestLoginRefusalsCounted: each refused login counts once under its
// reason in the registry the hub serves as /metrics; a login that succeeds
// counts nothing.
func TestLoginRefusalsCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newTestServer(t, HTTPOptions{Registerer: reg, MaxPasswordChecks: 1, PasswordCheckWait: 20 * time.Millisecond})
	want := func(locked, busy, bad int) {
		t.Helper()
		exp := fmt.Sprintf(`# HELP sysmonstm_login_refusals_total Logins refused, by reason: locked (lock-out), busy (no free password check), bad_credentials (unknown user or wrong password).
# TYPE sysmonstm_login_refusals_total counter
sysmonstm_login_refusals_total{reason="bad_credentials"} %d
sysmonstm_login_refusals_total{reason="busy"} %d
sysmonstm_login_refusals_total{reason="locked"} %d
`, bad, busy, locked)
		if err := testutil.GatherAndCompare(reg, strings.NewReader(exp), "sysmonstm_login_refusals_total"); err != nil {
			t.Fatal(err)
		}
	}
	want(0, 0, 0)
	if a := s.loginAt("192.0.2.1:1", "root", "admin-password"); a.Code != http.StatusOK {
		t.Fatalf("login: %d %s", a.Code, a.Body)
	}
	want(0, 0, 0)
	for i := range LockoutThreshold {
		if a := s.loginAt("198.51.100.7:1", "mallory", "guess"); a.Code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d %s", i+1, a.Code, a.Body)
		}
	}
	want(0, 0, LockoutThreshold)
	if a := s.loginAt("198.51.100.7:1", "mallory", "guess"); a.Code != http.StatusTooManyRequests {
		t.Fatalf("guess after the lock: %d %s", a.Code, a.Body)
	}
	want(1, 0, LockoutThreshold)

	held := holdChecks(s)
	first := make(chan int, 1)
	go func() { first <- s.loginAt("203.0.113.1:1", "vera", "viewer-password").Code }()
	for held.entered.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	if a := s.loginAt("203.0.113.2:1", "root", "admin-password"); a.Code != http.StatusServiceUnavailable {
		t.Fatalf("login while the only check is busy: %d %s", a.Code, a.Body)
	}
	close(held.release)
	if code := <-first; code != http.StatusOK {
		t.Fatalf("held login: %d", code)
	}
	want(1, 1, LockoutThreshold)
}
