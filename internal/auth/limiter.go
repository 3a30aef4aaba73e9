package auth

import (
	"sync"
	"time"
)

// Login lock-out: after LockoutThreshold failures for one key (a client IP
// or a user name), each further failure locks the key for LockoutBase,
// then twice that, and so on up to LockoutMax. A key forgets its failures
// after LockoutForget without one.
const (
	LockoutThreshold = 5
	LockoutBase      = time.Second
	LockoutMax       = 15 * time.Minute
	LockoutForget    = time.Hour
	maxLimiterKeys   = 100_000
)

// Limiter counts failed logins per key and locks keys out with
// exponential back-off. It is safe for concurrent use.
type Limiter struct {
	now func() time.Time

	mu      sync.Mutex // protects entries
	entries map[string]*lockout
}

type lockout struct {
	failures    int
	lastFailure time.Time
	until       time.Time
}

// NewLimiter returns a Limiter reading time from now (nil: time.Now).
func NewLimiter(now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{now: now, entries: map[string]*lockout{}}
}

// Check returns how long the longest-locked of keys stays locked; 0 means
// none is locked. A correct password does not lift a lock.
func (l *Limiter) Check(keys ...string) time.Duration {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		if e, ok := l.entries[k]; ok && e.until.After(now) {
			wait = max(wait, e.until.Sub(now))
		}
	}
	return wait
}

// Fail records a failed login for every key and returns the longest lock
// it caused (0 while under the threshold).
func (l *Limiter) Fail(keys ...string) time.Duration {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.entries) >= maxLimiterKeys {
		l.pruneLocked(now)
	}
	var locked time.Duration
	for _, k := range keys {
		e, ok := l.entries[k]
		if !ok || now.Sub(e.lastFailure) > LockoutForget && !e.until.After(now) {
			e = &lockout{}
			l.entries[k] = e
		}
		e.failures++
		e.lastFailure = now
		if e.failures >= LockoutThreshold {
			d := LockoutMax
			if shift := e.failures - LockoutThreshold; shift < 20 {
				d = min(LockoutBase<<shift, LockoutMax)
			}
			e.until = now.Add(d)
			locked = max(locked, d)
		}
	}
	return locked
}

// Succeed forgets the failures of keys (after a successful login).
func (l *Limiter) Succeed(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		delete(l.entries, k)
	}
}

// pruneLocked drops entries neither locked nor recent; if that frees too
// little (a flood of distinct keys), it drops every unlocked entry.
func (l *Limiter) pruneLocked(now time.Time) {
	for k, e := range l.entries {
		if !e.until.After(now) && now.Sub(e.lastFailure) > LockoutForget {
			delete(l.entries, k)
		}
	}
	if len(l.entries) < maxLimiterKeys*3/4 {
		return
	}
	for k, e := range l.entries {
		if !e.until.After(now) {
			delete(l.entries, k)
		}
	}
}
