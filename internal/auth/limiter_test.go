package auth

import (
	"testing"
	"time"
)

func TestLimiterBackoff(t *testing.T) {
	clk := newClock()
	l := NewLimiter(clk.Now)
	keys := []string{"ip:10.0.0.1", "user:admin"}
	for i := 1; i < LockoutThreshold; i++ {
		if d := l.Fail(keys...); d != 0 {
			t.Fatalf("failure %d locked for %s", i, d)
		}
		if l.Check(keys...) != 0 {
			t.Fatalf("locked after %d failures", i)
		}
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	for _, w := range want {
		if d := l.Fail(keys...); d != w {
			t.Fatalf("lock %s, want %s", d, w)
		}
		if d := l.Check("user:admin"); d != w {
			t.Fatalf("Check = %s, want %s", d, w)
		}
		clk.Add(w - time.Millisecond)
		if l.Check(keys...) == 0 {
			t.Fatal("unlocked early")
		}
		clk.Add(time.Millisecond)
		if d := l.Check(keys...); d != 0 {
			t.Fatalf("still locked for %s", d)
		}
	}
	for range 30 {
		l.Fail(keys...)
	}
	if d := l.Check(keys...); d != LockoutMax {
		t.Fatalf("cap: %s", d)
	}
	// Another user from another address is unaffected.
	if d := l.Check("ip:10.0.0.2", "user:bob"); d != 0 {
		t.Fatalf("unrelated keys locked for %s", d)
	}
	// Success clears; the lock's end plus an hour forgets.
	l.Succeed(keys...)
	if d := l.Check(keys...); d != 0 {
		t.Fatal("locked after success")
	}
	for range LockoutThreshold - 1 {
		l.Fail("user:carol")
	}
	clk.Add(LockoutForget + time.Second)
	if d := l.Fail("user:carol"); d != 0 {
		t.Fatalf("old failures still counted: locked %s", d)
	}
}

func TestLimiterBoundsItsMemory(t *testing.T) {
	clk := newClock()
	l := NewLimiter(clk.Now)
	for i := range maxLimiterKeys + 10 {
		l.Fail("ip:" + string(rune(i)))
	}
	l.mu.Lock()
	n := len(l.entries)
	l.mu.Unlock()
	if n > maxLimiterKeys {
		t.Fatalf("%d entries", n)
	}
}
