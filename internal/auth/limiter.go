package auth

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Login lock-out: the LockoutThreshold-th failure for one key (a client
// address, or a user name) locks the key for LockoutBase, each further
// failure for twice as long as the one before, up to LockoutMax. A key
// forgets its failures LockoutForget after the last one.
const (
	LockoutThreshold = 5
	LockoutBase      = time.Second
	LockoutMax       = 15 * time.Minute
	LockoutForget    = time.Hour
	// pendingRetry is the Retry-After of an attempt refused because the
	// attempts already being checked could use up the key's allowance.
	pendingRetry = time.Second
)

// Memory bounds of a Limiter.
const (
	// maxLimiterKeys bounds the tracked keys (addresses and user names).
	maxLimiterKeys = 100_000
	// maxKnownUsers bounds the users whose known-good addresses are kept,
	// knownAddrsPerUser the addresses kept per user (the newest).
	maxKnownUsers     = 10_000
	knownAddrsPerUser = 8
)

// Limiter locks out password guessing, per client address and per user
// name, with exponential back-off. An attempt is reserved (Begin) before
// its password is checked and ended after (Fail, Succeed or Abort), so
// concurrent attempts cannot check more passwords than sequential ones
// could before a lock.
//
// The per-user lock does not apply at an address this user logged in from
// before (one of the last knownAddrsPerUser successful logins' addresses):
// a guesser elsewhere cannot lock the user out there. The per-address lock
// always applies. Everything is in memory and lost at a restart. It is safe
// for concurrent use.
type Limiter struct {
	now func() time.Time

	mu      sync.Mutex          // protects entries and known
	entries map[string]*lockout // "ip:" + limiterAddr, "user:" + lower-case user name
	known   map[string][]string // user name → addresses of its successful logins, oldest first
}

type lockout struct {
	failures    int
	lastFailure time.Time
	until       time.Time // locked while now is before it
	pending     int       // attempts reserved and not yet ended
}

// NewLimiter returns a Limiter reading time from now (nil: time.Now).
func NewLimiter(now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{now: now, entries: map[string]*lockout{}, known: map[string][]string{}}
}

// LockedError refuses a login attempt for RetryAfter.
type LockedError struct {
	RetryAfter time.Duration
	// Pending: not locked yet, but the attempts already being checked
	// could use up the failures left before the lock.
	Pending bool
}

func (e *LockedError) Error() string {
	secs := e.Seconds()
	if e.Pending {
		return fmt.Sprintf("too many logins for this user or address in progress: try again in %d s", secs)
	}
	return fmt.Sprintf("too many failed logins: try again in %d s", secs)
}

// Seconds is RetryAfter in whole seconds, rounded up (at least 1).
func (e *LockedError) Seconds() int {
	return max(1, int((e.RetryAfter+time.Second-1)/time.Second))
}

// Attempt is one login attempt admitted by Limiter.Begin. The first of
// Fail, Succeed and Abort ends it; later calls do nothing.
type Attempt struct {
	l            *Limiter
	addrKey      string
	userKey      string
	user, addr   string // as given (user) and as keyed (addr): the known-good entry
	userReserved bool   // userKey was reserved: addr is not known-good for user
	ended        bool
}

// limiterAddr is the lock-out key of a client address: the IPv4 address,
// or the /64 of an IPv6 address (one host usually holds a whole /64).
// Anything else is used as it is.
func limiterAddr(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.String()
		}
	}
	return a.String()
}

// Begin reserves a login attempt for user from the client address addr,
// before its password is checked. It refuses the attempt (a nil Attempt
// and the refusal) when a key is locked, or when the attempts already in
// progress for a key could use up the failures left before its lock (at
// most LockoutThreshold in a row, one at a time once the key has locked
// before).
func (l *Limiter) Begin(addr, user string) (*Attempt, *LockedError) {
	addr = limiterAddr(addr)
	at := &Attempt{l: l, addrKey: "ip:" + addr, userKey: "user:" + strings.ToLower(user), user: user, addr: addr}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	at.userReserved = !slices.Contains(l.known[user], addr)
	keys := []string{at.addrKey}
	if at.userReserved {
		keys = append(keys, at.userKey)
	}
	var locked time.Duration
	pending := false
	for _, k := range keys {
		e, ok := l.entries[k]
		if !ok {
			continue
		}
		e.forget(now)
		if e.until.After(now) {
			locked = max(locked, e.until.Sub(now))
		} else if e.pending >= max(1, LockoutThreshold-e.failures) {
			pending = true
		}
	}
	switch {
	case locked > 0:
		return nil, &LockedError{RetryAfter: locked}
	case pending:
		return nil, &LockedError{RetryAfter: pendingRetry, Pending: true}
	}
	for _, k := range keys {
		l.entryLocked(k, now).pending++
	}
	return at, nil
}

// Fail ends the attempt as a wrong password: it counts a failure for the
// address and the user (also where the user key was not reserved) and
// returns the longest lock that caused (0 while under the threshold).
func (a *Attempt) Fail() time.Duration {
	l := a.l
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if a.ended {
		return 0
	}
	a.ended = true
	var locked time.Duration
	for _, k := range []string{a.addrKey, a.userKey} {
		e := l.entryLocked(k, now)
		if k == a.addrKey || a.userReserved {
			e.pending--
		}
		e.forget(now)
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

// Succeed ends the attempt as a correct password: the failures of its keys
// are forgotten unless a key is locked meanwhile (by a guesser elsewhere),
// and the address becomes known-good for the user.
func (a *Attempt) Succeed() {
	l := a.l
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if a.ended {
		return
	}
	a.ended = true
	for _, k := range []string{a.addrKey, a.userKey} {
		e, ok := l.entries[k]
		if !ok {
			continue
		}
		if k == a.addrKey || a.userReserved {
			e.pending--
		}
		if !e.until.After(now) {
			e.failures, e.until = 0, time.Time{}
		}
		if e.failures == 0 && e.pending == 0 {
			delete(l.entries, k)
		}
	}
	l.rememberLocked(a.user, a.addr)
}

// Abort ends the attempt without a verdict (the password could not be
// checked).
func (a *Attempt) Abort() {
	l := a.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if a.ended {
		return
	}
	a.ended = true
	for _, k := range []string{a.addrKey, a.userKey} {
		e, ok := l.entries[k]
		if !ok || k == a.userKey && !a.userReserved {
			continue
		}
		e.pending--
		if e.failures == 0 && e.pending == 0 {
			delete(l.entries, k)
		}
	}
}

// forget drops the failures of an unlocked key after LockoutForget without
// one.
func (e *lockout) forget(now time.Time) {
	if e.failures > 0 && !e.until.After(now) && now.Sub(e.lastFailure) > LockoutForget {
		e.failures, e.until = 0, time.Time{}
	}
}

// entryLocked returns key's entry, making room for it first when the table
// is full. l.mu must be held.
func (l *Limiter) entryLocked(key string, now time.Time) *lockout {
	if e, ok := l.entries[key]; ok {
		return e
	}
	if len(l.entries) >= maxLimiterKeys {
		l.pruneLocked(now)
	}
	e := &lockout{}
	l.entries[key] = e
	return e
}

// pruneLocked makes room in a full table. It drops entries neither locked
// nor recent; if that frees too little (a flood of distinct keys), every
// unlocked entry; if the table is still full (a flood of locks), the locks
// that end soonest. Entries of attempts in progress stay: there are at
// most two per request waiting for or holding a password check.
func (l *Limiter) pruneLocked(now time.Time) {
	idle := func(e *lockout) bool { return e.pending == 0 && !e.until.After(now) }
	for k, e := range l.entries {
		if idle(e) && now.Sub(e.lastFailure) > LockoutForget {
			delete(l.entries, k)
		}
	}
	if len(l.entries) < maxLimiterKeys*3/4 {
		return
	}
	for k, e := range l.entries {
		if idle(e) {
			delete(l.entries, k)
		}
	}
	if len(l.entries) < maxLimiterKeys*15/16 {
		return
	}
	type lock struct {
		key   string
		until time.Time
	}
	var locks []lock
	for k, e := range l.entries {
		if e.pending == 0 {
			locks = append(locks, lock{k, e.until})
		}
	}
	slices.SortFunc(locks, func(a, b lock) int { return a.until.Compare(b.until) })
	for _, lk := range locks {
		if len(l.entries) < maxLimiterKeys*15/16 {
			break
		}
		delete(l.entries, lk.key)
	}
}

// rememberLocked records addr as known-good for user, keeping the newest
// knownAddrsPerUser addresses of at most maxKnownUsers users. l.mu must be
// held.
func (l *Limiter) rememberLocked(user, addr string) {
	addrs, ok := l.known[user]
	if !ok && len(l.known) >= maxKnownUsers {
		for u := range l.known { // any one: the map is bounded, not ordered
			delete(l.known, u)
			break
		}
	}
	addrs = slices.DeleteFunc(addrs, func(a string) bool { return a == addr })
	if len(addrs) >= knownAddrsPerUser {
		addrs = slices.Delete(addrs, 0, len(addrs)-knownAddrsPerUser+1)
	}
	l.known[user] = append(addrs, addr)
}
