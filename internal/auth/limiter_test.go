package auth

import (
	"fmt"
	"testing"
	"time"
)

// fail runs one failed attempt for user from addr; it fails the test when
// the attempt is refused.
func fail(t *testing.T, l *Limiter, addr, user string) time.Duration {
	t.Helper()
	at, le := l.Begin(addr, user)
	if le != nil {
		t.Fatalf("attempt %s@%s refused: %v", user, addr, le)
	}
	return at.Fail()
}

// lockedFor is how long an attempt for user from addr is refused (0: it
// is admitted, and aborted again).
func lockedFor(t *testing.T, l *Limiter, addr, user string) time.Duration {
	t.Helper()
	at, le := l.Begin(addr, user)
	if le == nil {
		at.Abort()
		return 0
	}
	if le.Pending {
		t.Fatalf("Begin(%s, %s): %v", addr, user, le)
	}
	return le.RetryAfter
}

func TestLimiterBackoff(t *testing.T) {
	clk := newClock()
	l := NewLimiter(clk.Now)
	const addr, user = "10.0.0.1", "admin"
	for i := 1; i < LockoutThreshold; i++ {
		if d := fail(t, l, addr, user); d != 0 {
			t.Fatalf("failure %d locked for %s", i, d)
		}
		if d := lockedFor(t, l, addr, user); d != 0 {
			t.Fatalf("locked after %d failures", i)
		}
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	for _, w := range want {
		if d := fail(t, l, addr, user); d != w {
			t.Fatalf("lock %s, want %s", d, w)
		}
		// Both keys are locked: the address for any user, the user from
		// any (not known-good) address.
		if d := lockedFor(t, l, addr, "bob"); d != w {
			t.Fatalf("address locked for %s, want %s", d, w)
		}
		if d := lockedFor(t, l, "10.9.9.9", "ADMIN"); d != w {
			t.Fatalf("user locked for %s, want %s", d, w)
		}
		clk.Add(w - time.Millisecond)
		if lockedFor(t, l, addr, user) == 0 {
			t.Fatal("unlocked early")
		}
		clk.Add(time.Millisecond)
		if d := lockedFor(t, l, addr, user); d != 0 {
			t.Fatalf("still locked for %s", d)
		}
	}
	for range 30 {
		fail(t, l, addr, user)
		clk.Add(LockoutMax)
	}
	if d := fail(t, l, addr, user); d != LockoutMax {
		t.Fatalf("cap: %s", d)
	}
	// Another user from another address is unaffected.
	if d := lockedFor(t, l, "10.0.0.2", "bob"); d != 0 {
		t.Fatalf("unrelated keys locked for %s", d)
	}
	// The lock's end plus an hour forgets.
	for range LockoutThreshold - 1 {
		fail(t, l, "10.0.0.3", "carol")
	}
	clk.Add(LockoutForget + time.Second)
	if d := fail(t, l, "10.0.0.3", "carol"); d != 0 {
		t.Fatalf("old failures still counted: locked %s", d)
	}
}

// TestLimiterReservesBeforeTheCheck: attempts in progress count against
// the failures left, so concurrent guesses get no more checks than
// sequential ones. Old code checked before and counted after: every one of
// them was admitted.
func TestLimiterReservesBeforeTheCheck(t *testing.T) {
	clk := newClock()
	l := NewLimiter(clk.Now)
	var open []*Attempt
	for range LockoutThreshold {
		at, le := l.Begin("10.0.0.1", "admin")
		if le != nil {
			t.Fatalf("attempt %d: %v", len(open)+1, le)
		}
		open = append(open, at)
	}
	// pending is whether the next attempt for user at addr is refused as
	// one too many in progress.
	pending := func(addr, user string) bool {
		t.Helper()
		at, le := l.Begin(addr, user)
		if le == nil {
			at.Abort()
			return false
		}
		if !le.Pending || le.Seconds() != 1 {
			t.Fatalf("Begin(%s, %s): %v", addr, user, le)
		}
		return true
	}
	if !pending("10.0.0.1", "admin") {
		t.Fatalf("attempt %d admitted while %d are in progress", LockoutThreshold+1, LockoutThreshold)
	}
	// The per-user allowance holds across addresses, the per-address one
	// across users.
	if !pending("10.0.0.2", "admin") {
		t.Fatal("same user, other address: admitted")
	}
	if !pending("10.0.0.1", "bob") {
		t.Fatal("same address, other user: admitted")
	}
	// An aborted attempt frees its place; a failed one uses it up.
	open[0].Abort()
	open[0].Fail() // ended already: no effect
	at, le := l.Begin("10.0.0.1", "admin")
	if le != nil {
		t.Fatalf("after an abort: %v", le)
	}
	open[0] = at
	for i, at := range open {
		d := at.Fail()
		if (i == LockoutThreshold-1) != (d == time.Second) {
			t.Fatalf("failure %d locked for %s", i+1, d)
		}
	}
	if d := lockedFor(t, l, "10.0.0.1", "admin"); d != time.Second {
		t.Fatalf("after %d failures: locked %s", LockoutThreshold, d)
	}
	// Once a key has locked, one attempt at a time.
	clk.Add(time.Second)
	at, le = l.Begin("10.0.0.1", "admin")
	if le != nil {
		t.Fatalf("after the lock: %v", le)
	}
	if !pending("10.0.0.1", "admin") {
		t.Fatal("second attempt after a lock: admitted")
	}
	if d := at.Fail(); d != 2*time.Second {
		t.Fatalf("lock %s, want 2s", d)
	}
}

// TestLimiterKnownGoodAddress: the per-user lock does not apply where the
// user logged in before; the per-address lock does, and a success there
// does not lift a lock caused elsewhere.
func TestLimiterKnownGoodAddress(t *testing.T) {
	clk := newClock()
	l := NewLimiter(clk.Now)
	at, le := l.Begin("192.0.2.10", "admin")
	if le != nil {
		t.Fatal(le)
	}
	at.Succeed()
	for i := range LockoutThreshold {
		fail(t, l, fmt.Sprintf("198.51.100.%d", i), "admin")
	}
	if d := lockedFor(t, l, "203.0.113.1", "admin"); d == 0 {
		t.Fatal("admin not locked at a new address")
	}
	at, le = l.Begin("192.0.2.10", "admin")
	if le != nil {
		t.Fatalf("admin at its known-good address: %v", le)
	}
	at.Succeed()
	if d := lockedFor(t, l, "203.0.113.1", "admin"); d == 0 {
		t.Fatal("a login at the known-good address lifted the lock elsewhere")
	}
	// A guesser at the known-good address is stopped by its address lock.
	for range LockoutThreshold {
		fail(t, l, "192.0.2.10", "admin")
	}
	if d := lockedFor(t, l, "192.0.2.10", "admin"); d == 0 {
		t.Fatal("guessing at the known-good address is not locked")
	}
	// IPv6: the /64 is one address (privacy addresses stay known-good,
	// one host cannot rotate through its /64).
	at, le = l.Begin("2001:db8:1:2::10", "erin")
	if le != nil {
		t.Fatal(le)
	}
	at.Succeed()
	for i := range LockoutThreshold {
		fail(t, l, fmt.Sprintf("203.0.113.%d", i), "erin")
	}
	if d := lockedFor(t, l, "2001:db8:1:2:aaaa:bbbb:cccc:dddd", "erin"); d != 0 {
		t.Fatalf("erin at another address of a known-good /64: locked %s", d)
	}
	for i := range LockoutThreshold {
		fail(t, l, fmt.Sprintf("2001:db8:9:9::%x", i+1), "bob")
	}
	if d := lockedFor(t, l, "2001:db8:9:9::ffff", "carol"); d == 0 {
		t.Fatal("an IPv6 guesser escapes its address lock by changing the host part")
	}
	// Only the newest knownAddrsPerUser addresses are kept.
	for i := range knownAddrsPerUser + 1 {
		at, le := l.Begin(fmt.Sprintf("192.0.2.%d", 100+i), "dana")
		if le != nil {
			t.Fatal(le)
		}
		at.Succeed()
	}
	for i := range LockoutThreshold {
		fail(t, l, fmt.Sprintf("203.0.113.%d", 100+i), "dana")
	}
	if d := lockedFor(t, l, "192.0.2.100", "dana"); d == 0 {
		t.Fatal("the oldest known-good address is still known")
	}
	if d := lockedFor(t, l, "192.0.2.101", "dana"); d != 0 {
		t.Fatalf("a recent known-good address: locked %s", d)
	}
}

func TestLimiterAddr(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := limiterAddr(in); got != want {
			t.Errorf("limiterAddr(%q) = %q, want %q", in, got, want)
		}
	}
	f("10.0.0.1", "10.0.0.1")
	f("::ffff:10.0.0.1", "10.0.0.1")
	f("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64")
	f("fe80::1%eth0", "fe80::/64")
	f("::1", "::/64")
	f("pipe", "pipe")
}

func TestLimiterBoundsItsMemory(t *testing.T) {
	clk := newClock()
	l := NewLimiter(clk.Now)
	// A flood of locks: every key locked for the maximum.
	for i := range maxLimiterKeys/2 + 10 {
		at, le := l.Begin(fmt.Sprintf("ip-%d", i), fmt.Sprintf("u-%d", i))
		if le != nil {
			t.Fatal(le)
		}
		l.mu.Lock()
		for _, k := range []string{at.addrKey, at.userKey} {
			l.entries[k].failures, l.entries[k].lastFailure = 30, clk.Now()
		}
		l.mu.Unlock()
		at.Fail()
		if i%1000 == 0 {
			clk.Add(time.Millisecond)
		}
	}
	l.mu.Lock()
	n := len(l.entries)
	l.mu.Unlock()
	if n > maxLimiterKeys {
		t.Fatalf("%d entries", n)
	}
	// The newest locks are kept, the soonest-ending ones went.
	if d := lockedFor(t, l, fmt.Sprintf("ip-%d", maxLimiterKeys/2+9), "x"); d != LockoutMax {
		t.Fatalf("newest lock: %s", d)
	}
	for i := range maxKnownUsers + 10 {
		at, le := l.Begin("10.0.0.1", fmt.Sprintf("user-%d", i))
		if le != nil {
			t.Fatal(le)
		}
		at.Succeed()
	}
	if n := len(l.known); n > maxKnownUsers {
		t.Fatalf("%d users with known-good addresses", n)
	}
}
