package auth

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// loginStorm is what one burst of concurrent logins cost the hub.
type loginStorm struct {
	checks     int           // password checks: answers 200 and 401
	refused    map[int]int   // status → count of the other answers
	wall       time.Duration // first request sent to last answer
	maxHealth  time.Duration // slowest GET /health answered meanwhile
	healthSeen int           // GET /health answered meanwhile
}

// runLoginStorm sends n concurrent wrong logins through the real handler
// (auth middleware and login route) at production bcrypt cost: for user
// "root" from one address, or with unknownUsers for n different unknown
// users from n addresses. Meanwhile one client polls GET /health every 10
// ms. Each request is served in its own goroutine, as net/http does.
func runLoginStorm(tb testing.TB, n int, unknownUsers bool) loginStorm {
	tb.Helper()
	saved := bcryptCost
	bcryptCost = productionCost
	defer func() { bcryptCost = saved }()
	d, _ := openDB(tb)
	st, err := Open(context.Background(), d, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := st.AddUser(context.Background(), "root", "admin-password", RoleAdmin); err != nil {
		tb.Fatal(err)
	}
	a := NewHTTP(HTTPOptions{Store: st})
	mux := http.NewServeMux()
	for _, rt := range a.Routes() {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	h := a.Middleware(mux)
	// The dummy hash of unknown users is made once, at first use: make it
	// before the clock starts, and make sure a test did not make it at the
	// tests' cost.
	if c, err := bcrypt.Cost(dummyHash()); err != nil || c != productionCost {
		tb.Skipf("the dummy hash has cost %d, not %d: run the benchmark alone (-run '^$')", c, productionCost)
	}

	var (
		mu  sync.Mutex
		out = loginStorm{refused: map[int]int{}}
		wg  sync.WaitGroup
	)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user, addr := "root", "192.0.2.1:40000"
			if unknownUsers {
				user, addr = fmt.Sprintf("ghost-%d", i), fmt.Sprintf("198.51.100.%d:40000", i%250+1)
			}
			r := httptest.NewRequest(http.MethodPost, "/api/auth/login", strings.NewReader(`{"username":"`+user+`","password":"wrong-password"}`))
			r.RemoteAddr = addr
			rec := httptest.NewRecorder()
			<-start
			h.ServeHTTP(rec, r)
			mu.Lock()
			defer mu.Unlock()
			if rec.Code == http.StatusOK || rec.Code == http.StatusUnauthorized {
				out.checks++
			} else {
				out.refused[rec.Code]++
			}
		}()
	}
	done := make(chan struct{})
	healthDone := make(chan struct{})
	go func() {
		defer close(healthDone)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			r := httptest.NewRequest(http.MethodGet, "/health", nil)
			t0 := time.Now()
			h.ServeHTTP(httptest.NewRecorder(), r)
			out.maxHealth = max(out.maxHealth, time.Since(t0))
			out.healthSeen++
		}
	}()
	t0 := time.Now()
	close(start)
	wg.Wait()
	out.wall = time.Since(t0)
	close(done)
	<-healthDone
	return out
}

// BenchmarkLoginStorm measures 60 concurrent wrong logins at bcrypt cost
// 12 (docs/security.md, "Login throttling"):
//
//	go test -run '^$' -bench LoginStorm -benchtime 1x ./internal/auth
func BenchmarkLoginStorm(b *testing.B) {
	for _, c := range []struct {
		name    string
		unknown bool
	}{{"one-user-one-address", false}, {"unknown-users-many-addresses", true}} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				s := runLoginStorm(b, 60, c.unknown)
				b.ReportMetric(float64(s.checks), "checks/op")
				b.ReportMetric(float64(s.wall.Milliseconds()), "wall-ms/op")
				b.ReportMetric(float64(s.maxHealth)/float64(time.Millisecond), "max-health-ms/op")
				b.Logf("%s: %d password checks, refused %v, wall %s, GET /health max %s over %d requests",
					c.name, s.checks, s.refused, s.wall.Round(time.Millisecond), s.maxHealth.Round(10*time.Microsecond), s.healthSeen)
			}
		})
	}
}

// BenchmarkLimiterFull measures the heap of a Limiter at its bounds:
// maxLimiterKeys keys, half of them user names of the longest a login
// accepts (256 bytes) and half IPv6 /64s, and maxKnownUsers users with
// knownAddrsPerUser known-good addresses each (docs/security.md):
//
//	go test -run '^$' -bench LimiterFull -benchtime 1x ./internal/auth
func BenchmarkLimiterFull(b *testing.B) {
	long := strings.Repeat("x", 250)
	for range b.N {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		l := NewLimiter(newClock().Now)
		for i := range maxLimiterKeys / 2 {
			at, le := l.Begin(fmt.Sprintf("2001:db8:%x:%x::1", i>>16, i&0xffff), fmt.Sprintf("%s%06d", long, i))
			if le != nil {
				b.Fatal(le)
			}
			at.Fail()
		}
		l.mu.Lock()
		for i := range maxKnownUsers {
			for j := range knownAddrsPerUser {
				l.rememberLocked(fmt.Sprintf("%s%06d", long[:maxUserName-6], i), fmt.Sprintf("2001:db8:%x:%x::/64", i, j))
			}
		}
		keys, users := len(l.entries), len(l.known)
		l.mu.Unlock()
		runtime.GC()
		runtime.ReadMemStats(&m1)
		runtime.KeepAlive(l)
		mib := float64(m1.HeapAlloc-m0.HeapAlloc) / (1 << 20)
		b.ReportMetric(mib, "heap-MiB")
		b.Logf("%d keys, %d users with known-good addresses: %.1f MiB", keys, users, mib)
	}
}
