package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HTTP Basic authentication, for Prometheus clients such as Grafana's data
// source: the user's name and password, checked like a login (through the
// same limiter and password-check gate), then remembered briefly so that
// not every request pays for bcrypt.
const (
	// BasicCacheTTL is how long a verified name and password are taken
	// without a new bcrypt check.
	BasicCacheTTL = time.Minute
	// basicCacheMax bounds the remembered credentials; a full cache is
	// emptied (the next requests check their passwords again).
	basicCacheMax = 1024
)

// basicCache remembers verified Basic credentials by an HMAC of name and
// password under a key made at start, so the process holds no password
// and no hash that could be tested offline without that key.
type basicCache struct {
	key []byte
	now func() time.Time

	mu      sync.Mutex // protects entries
	entries map[[sha256.Size]byte]basicEntry
}

type basicEntry struct {
	user    string
	hash    string // the user's stored password hash when verified
	expires time.Time
}

func newBasicCache(now func() time.Time) *basicCache {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails (Go 1.24+)
	return &basicCache{key: key, now: now, entries: map[[sha256.Size]byte]basicEntry{}}
}

func (c *basicCache) sum(user, password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(strconv.Itoa(len(user))))
	m.Write([]byte{0})
	m.Write([]byte(user))
	m.Write([]byte(password))
	var k [sha256.Size]byte
	m.Sum(k[:0])
	return k
}

func (c *basicCache) get(k [sha256.Size]byte) (basicEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if ok && !c.now().Before(e.expires) {
		delete(c.entries, k)
		return basicEntry{}, false
	}
	return e, ok
}

func (c *basicCache) put(k [sha256.Size]byte, e basicEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= basicCacheMax {
		clear(c.entries)
	}
	e.expires = c.now().Add(BasicCacheTTL)
	c.entries[k] = e
}

func (c *basicCache) drop(k [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, k)
}

// credential returns a user's role and stored password hash; ErrNotFound
// when there is no such user.
func (s *Store) credential(ctx context.Context, name string) (Role, string, error) {
	var role Role
	var hash string
	err := s.db.QueryRowContext(ctx, `SELECT role, password_hash FROM users WHERE name = ?`, name).Scan(&role, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", ErrNotFound
	}
	if err != nil {
		return "", "", fmt.Errorf("look up user: %w", err)
	}
	return role, hash, nil
}

// isBasic reports whether an Authorization header uses the Basic scheme.
func isBasic(h string) bool {
	return len(h) > 6 && strings.EqualFold(h[:6], "basic ")
}

// basic authenticates HTTP Basic credentials: from the cache while the
// user's stored password is still the one verified, else as a login does
// (limiter, password-check gate, bcrypt). A Basic principal reads only.
func (a *HTTP) basic(r *http.Request) (Principal, *authErr) {
	user, password, ok := r.BasicAuth()
	if !ok || user == "" || password == "" {
		return Principal{}, &authErr{status: http.StatusUnauthorized, msg: "malformed Basic Authorization header: want base64 of user:password"}
	}
	if len(user) > 256 || len(password) > 1024 {
		return Principal{}, &authErr{status: http.StatusUnauthorized, msg: ErrBadCredentials.Error()}
	}
	ctx := r.Context()
	k := a.basicCache.sum(user, password)
	if e, ok := a.basicCache.get(k); ok {
		role, hash, err := a.store.credential(ctx, e.user)
		switch {
		case err == nil && hash == e.hash:
			return Principal{User: e.user, Role: role, Basic: true}, nil
		case err != nil && !errors.Is(err, ErrNotFound):
			a.log.Error("user lookup failed", "err", err)
			return Principal{}, &authErr{status: http.StatusServiceUnavailable, msg: ErrStoreUnavailable.Error(), retryAfter: 5}
		}
		a.basicCache.drop(k) // removed, or its password changed: check again
	}
	ip := clientIP(r)
	att, le := a.lim.Begin(ip, user)
	if le != nil {
		a.met.refuse(RefusedLocked)
		a.log.Warn("basic auth refused: locked out", "user", user, "remote", ip, "retry_after_s", le.Seconds())
		return Principal{}, &authErr{status: http.StatusTooManyRequests, msg: le.Error(), retryAfter: le.Seconds()}
	}
	defer att.Abort() // unless Fail or Succeed ended it
	if !a.gate.enter(ctx) {
		a.met.refuse(RefusedBusy)
		return Principal{}, &authErr{status: http.StatusServiceUnavailable, msg: "too many passwords being checked at once: try again in 1 s", retryAfter: 1}
	}
	u, err := func() (User, error) {
		defer a.gate.leave()
		return a.check(ctx, user, password)
	}()
	if errors.Is(err, ErrBadCredentials) {
		locked := att.Fail()
		a.met.refuse(RefusedBadCredentials)
		a.log.Warn("basic auth failed", "user", user, "remote", ip, "locked_for", locked)
		return Principal{}, &authErr{status: http.StatusUnauthorized, msg: ErrBadCredentials.Error()}
	}
	if err != nil {
		a.log.Error("password check failed", "err", err)
		return Principal{}, &authErr{status: http.StatusServiceUnavailable, msg: ErrStoreUnavailable.Error(), retryAfter: 5}
	}
	att.Succeed()
	if _, hash, err := a.store.credential(ctx, u.Name); err == nil {
		a.basicCache.put(k, basicEntry{user: u.Name, hash: hash})
	}
	return Principal{User: u.Name, Role: u.Role, Basic: true}, nil
}
