package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// Token is an agent token's record. The secret is never stored or listed.
type Token struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Machine is the one machine id the token may write as; "" allows any,
	// up to the hub's --max-machines-per-token.
	Machine    string     `json:"machine"`
	CreatedAt  time.Time  `json:"created"`
	ExpiresAt  *time.Time `json:"expires"`   // nil: never
	LastUsedAt *time.Time `json:"last_used"` // nil: never used (written every ~30 s)
	Revoked    bool       `json:"revoked"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	Expired    bool       `json:"expired"`
	// Machines is how many distinct machine ids the token has written as.
	Machines int `json:"machines"`
}

// NewToken describes a token to create.
type NewToken struct {
	Name    string        // free-form note, at most 200 characters
	Machine string        // bind to this machine id; "" = any
	Expires time.Duration // lifetime; 0 = never expires
}

// Agent token errors. ErrWrongMachine and ErrMachineLimit are permission
// errors (the token is valid but not for this machine); the others mean the
// token itself is not accepted.
var (
	ErrNoToken       = errors.New("no token given; pass --token (create one with `sysmonstm token create`)")
	ErrInvalidToken  = errors.New("unknown or invalid token")
	ErrTokenRevoked  = errors.New("token revoked")
	ErrTokenExpired  = errors.New("token expired")
	ErrWrongMachine  = errors.New("token is bound to another machine id")
	ErrMachineLimit  = errors.New("token has reached its limit of distinct machine ids")
	errCacheNotReady = errors.New("token table unavailable")
)

// IsPermission reports whether err means "valid token, wrong machine"
// (gRPC PermissionDenied, HTTP 403) rather than "no valid token".
func IsPermission(err error) bool {
	return errors.Is(err, ErrWrongMachine) || errors.Is(err, ErrMachineLimit)
}

const maxTokenName = 200

// maxTokenLifetime bounds --expires: ten years.
const maxTokenLifetime = 10 * 365 * 24 * time.Hour

func validateNewToken(nt NewToken) error {
	if utf8.RuneCountInString(nt.Name) > maxTokenName || !utf8.ValidString(nt.Name) {
		return invalidf("name: at most %d characters of UTF-8", maxTokenName)
	}
	for _, r := range nt.Name {
		if r < 0x20 || r == 0x7f {
			return invalidf("name: contains a control character")
		}
	}
	if nt.Machine != "" {
		if err := metric.ValidateMachineID(nt.Machine); err != nil {
			return invalidf("machine: %v", err)
		}
	}
	if nt.Expires < 0 || nt.Expires > maxTokenLifetime {
		return invalidf("expires: must be between 1m and 10 years (or absent for never)")
	}
	if nt.Expires > 0 && nt.Expires < time.Minute {
		return invalidf("expires: %s is shorter than 1m", nt.Expires)
	}
	return nil
}

// mac is the stored form of a secret: HMAC-SHA256 under the store's key.
func (s *Store) mac(secret []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write(secret)
	return m.Sum(nil)
}

// CreateToken stores a new agent token and returns its record and the
// token string, which exists nowhere else: show it once.
func (s *Store) CreateToken(ctx context.Context, nt NewToken) (Token, string, error) {
	if err := validateNewToken(nt); err != nil {
		return Token{}, "", err
	}
	id, secret, tok, err := newAgentToken()
	if err != nil {
		return Token{}, "", err
	}
	now := s.now()
	t := Token{ID: id, Name: nt.Name, Machine: nt.Machine, CreatedAt: fromMS(ms(now))}
	var expires sql.NullInt64
	if nt.Expires > 0 {
		e := now.Add(nt.Expires)
		expires = sql.NullInt64{Int64: ms(e), Valid: true}
		t.ExpiresAt = nullTime(expires)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO agent_tokens(id, hash, name, machine, created_at, expires_at) VALUES(?, ?, ?, ?, ?, ?)`,
		id, s.mac(secret), nt.Name, nt.Machine, ms(now), expires); err != nil {
		return Token{}, "", fmt.Errorf("store token: %w", err)
	}
	s.tokens.invalidate()
	return t, tok, nil
}

// ListTokens returns every token, newest first.
func (s *Store) ListTokens(ctx context.Context) ([]Token, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT t.id, t.name, t.machine, t.created_at, t.expires_at, t.last_used_at, t.revoked_at,
		(SELECT COUNT(*) FROM agent_token_machines m WHERE m.token_id = t.id)
		FROM agent_tokens t ORDER BY t.created_at DESC, t.id`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	now := ms(s.now())
	out := []Token{}
	for rows.Next() {
		var t Token
		var created int64
		var expires, used, revoked sql.NullInt64
		if err := rows.Scan(&t.ID, &t.Name, &t.Machine, &created, &expires, &used, &revoked, &t.Machines); err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		t.CreatedAt = fromMS(created)
		t.ExpiresAt, t.LastUsedAt, t.RevokedAt = nullTime(expires), nullTime(used), nullTime(revoked)
		t.Revoked = revoked.Valid
		t.Expired = expires.Valid && expires.Int64 <= now
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	// Unwritten last-use times are newer than the table's.
	s.usedMu.Lock()
	for i := range out {
		if v, ok := s.used[out[i].ID]; ok {
			out[i].LastUsedAt = nullTime(sql.NullInt64{Int64: v, Valid: true})
		}
	}
	s.usedMu.Unlock()
	return out, nil
}

// RevokeToken revokes a token by id: it is refused from then on and open
// streams using it are closed at their next re-check. Revoking a revoked
// token is not an error; an unknown id is ErrNotFound.
func (s *Store) RevokeToken(ctx context.Context, id string) error {
	if !validTokenID(id) {
		return fmt.Errorf("token %q: %w", id, ErrNotFound)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE agent_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, ms(s.now()), id)
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	s.tokens.invalidate()
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	var one int
	if err := s.db.QueryRowContext(ctx, `SELECT 1 FROM agent_tokens WHERE id = ?`, id).Scan(&one); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("token %q: %w", id, ErrNotFound)
		}
		return fmt.Errorf("revoke token: %w", err)
	}
	return nil
}

// InvalidateTokens makes the next token check re-read the token table: the
// hub calls it when another process sharing the database changed a token
// (PostgreSQL NOTIFY). Until that re-read succeeds, checks keep using the
// previous copy, so a database outage does not cut connected agents.
func (s *Store) InvalidateTokens() { s.tokens.invalidate() }

// SetLocalAgent creates (once) the in-memory credential of `up` mode's own
// agent: a random token, never stored, accepted for machine only.
func (s *Store) SetLocalAgent(machine string) (string, error) {
	s.localMu.Lock()
	defer s.localMu.Unlock()
	if s.local != nil {
		if s.local.machine != machine {
			return "", fmt.Errorf("local agent credential already issued for %q", s.local.machine)
		}
		return s.local.token, nil
	}
	_, _, tok, err := newAgentToken()
	if err != nil {
		return "", err
	}
	s.local = &localCred{token: tok, machine: machine}
	return tok, nil
}

// VerifyAgent checks that token may write as machine and returns the
// token's id ("local" for `up` mode's credential). It reads the token table
// through a cache at most TokenCacheTTL old, records the use (written in
// batches by FlushLastUsed) and, for an unbound token, records the machine
// id against the per-token limit.
func (s *Store) VerifyAgent(ctx context.Context, token, machine string) (string, error) {
	id, e, local, err := s.checkToken(ctx, token)
	switch {
	case err != nil:
		return id, err
	case local != nil:
		if machine != local.machine {
			return id, fmt.Errorf("%w (the local agent's credential is for %q)", ErrWrongMachine, local.machine)
		}
		return id, nil
	case e.machine != "":
		if e.machine != machine {
			return id, fmt.Errorf("%w: token %s is bound to %q, not %q", ErrWrongMachine, id, e.machine, machine)
		}
	default:
		if err := s.admitMachine(ctx, id, machine); err != nil {
			return id, err
		}
	}
	s.usedMu.Lock()
	s.used[id] = ms(s.now())
	s.usedMu.Unlock()
	return id, nil
}

// CheckAgentToken checks token alone, before the machine id it will write
// as is known: nil means a known, unrevoked, unexpired token (or `up`
// mode's credential). It costs what VerifyAgent costs without the machine
// check and records nothing; the hub calls it before it reads anything an
// agent sends, and VerifyAgent once the hello names the machine.
func (s *Store) CheckAgentToken(ctx context.Context, token string) error {
	_, _, _, err := s.checkToken(ctx, token)
	return err
}

// checkToken finds token's entry and checks its secret, revocation and
// expiry. local is set (and e zero) for `up` mode's credential.
func (s *Store) checkToken(ctx context.Context, token string) (id string, e tokenEntry, local *localCred, err error) {
	if token == "" {
		return "", e, nil, ErrNoToken
	}
	s.localMu.Lock()
	local = s.local
	s.localMu.Unlock()
	if local != nil && subtle.ConstantTimeCompare([]byte(token), []byte(local.token)) == 1 {
		return "local", e, local, nil
	}
	id, secret, err := ParseToken(token)
	if err != nil {
		return "", e, nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	entries, err := s.tokens.get(ctx, s)
	if err != nil {
		return "", e, nil, err
	}
	sum := s.mac(secret)
	e, ok := entries[id]
	if !ok {
		// Same work as a known id, so timing does not tell ids apart.
		hmac.Equal(sum, s.key)
		return "", e, nil, ErrInvalidToken
	}
	if !hmac.Equal(sum, e.hash) {
		return "", tokenEntry{}, nil, ErrInvalidToken
	}
	if e.revoked {
		return id, e, nil, fmt.Errorf("token %s: %w", id, ErrTokenRevoked)
	}
	if e.expires != 0 && ms(s.now()) >= e.expires {
		return id, e, nil, fmt.Errorf("token %s: %w", id, ErrTokenExpired)
	}
	return id, e, nil, nil
}

// admitMachine records machine as written by the unbound token id, unless
// the token is at its limit. The set is loaded from the database once per
// token; only the hub writes it.
func (s *Store) admitMachine(ctx context.Context, id, machine string) error {
	if err := metric.ValidateMachineID(machine); err != nil {
		return fmt.Errorf("%w: %w", ErrWrongMachine, err)
	}
	s.machinesMu.Lock()
	defer s.machinesMu.Unlock()
	set, ok := s.machines[id]
	if !ok {
		set = map[string]struct{}{}
		rows, err := s.db.QueryContext(ctx, `SELECT machine FROM agent_token_machines WHERE token_id = ?`, id)
		if err != nil {
			return fmt.Errorf("load token machines: %w", err)
		}
		for rows.Next() {
			var m string
			if err := rows.Scan(&m); err != nil {
				rows.Close()
				return fmt.Errorf("load token machines: %w", err)
			}
			set[m] = struct{}{}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("load token machines: %w", err)
		}
		s.machines[id] = set
	}
	if _, ok := set[machine]; ok {
		return nil
	}
	if len(set) >= s.opts.MaxMachinesPerToken {
		return fmt.Errorf("%w: token %s already wrote as %d machine ids (--max-machines-per-token); create one token per machine with --machine", ErrMachineLimit, id, len(set))
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO agent_token_machines(token_id, machine, first_seen) VALUES(?, ?, ?) ON CONFLICT DO NOTHING`,
		id, machine, ms(s.now())); err != nil {
		return fmt.Errorf("record token machine: %w", err)
	}
	set[machine] = struct{}{}
	return nil
}

// FlushLastUsed writes the recorded token uses in one transaction.
func (s *Store) FlushLastUsed(ctx context.Context) error {
	s.usedMu.Lock()
	used := s.used
	s.used = map[string]int64{}
	s.usedMu.Unlock()
	if len(used) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for id, at := range used {
			if _, err := tx.ExecContext(ctx, `UPDATE agent_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`, at, id, at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Keep them for the next flush.
		s.usedMu.Lock()
		for id, at := range used {
			if s.used[id] < at {
				s.used[id] = at
			}
		}
		s.usedMu.Unlock()
		return fmt.Errorf("record token use: %w", err)
	}
	return nil
}

func (s *Store) inTx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// tokenEntry is a token row as VerifyAgent needs it.
type tokenEntry struct {
	hash    []byte
	machine string
	expires int64 // unix ms; 0 = never
	revoked bool
}

// tokenCache is the token table in memory, re-read when older than the
// TTL. Readers get an immutable map; one refresher at a time re-reads it
// while the others keep using the previous map.
type tokenCache struct {
	mu      sync.Mutex // protects entries and loaded
	entries map[string]tokenEntry
	loaded  time.Time

	reload sync.Mutex // held by the goroutine re-reading the table
}

func (c *tokenCache) invalidate() {
	c.mu.Lock()
	c.loaded = time.Time{}
	c.mu.Unlock()
}

func (c *tokenCache) fresh(now time.Time, ttl time.Duration) map[string]tokenEntry {
	if c.entries != nil && now.Sub(c.loaded) < ttl && !now.Before(c.loaded) {
		return c.entries
	}
	return nil
}

func (c *tokenCache) get(ctx context.Context, s *Store) (map[string]tokenEntry, error) {
	now := s.now()
	c.mu.Lock()
	entries, fresh := c.entries, c.fresh(now, s.opts.TokenCacheTTL)
	c.mu.Unlock()
	if fresh != nil {
		return fresh, nil
	}
	if entries != nil {
		if !c.reload.TryLock() {
			return entries, nil // another goroutine is re-reading
		}
	} else {
		c.reload.Lock()
	}
	defer c.reload.Unlock()
	c.mu.Lock()
	fresh = c.fresh(now, s.opts.TokenCacheTTL) // loaded while we waited?
	c.mu.Unlock()
	if fresh != nil {
		return fresh, nil
	}
	read, err := s.readTokens(ctx)
	if err != nil {
		if entries != nil {
			s.log.Warn("re-reading agent tokens failed; using the previous copy", "err", err)
			return entries, nil
		}
		return nil, fmt.Errorf("%w: %w", errCacheNotReady, err)
	}
	c.mu.Lock()
	c.entries, c.loaded = read, now
	c.mu.Unlock()
	return read, nil
}

func (s *Store) readTokens(ctx context.Context) (map[string]tokenEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, hash, machine, expires_at, revoked_at FROM agent_tokens`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]tokenEntry{}
	for rows.Next() {
		var id string
		var e tokenEntry
		var expires, revoked sql.NullInt64
		if err := rows.Scan(&id, &e.hash, &e.machine, &expires, &revoked); err != nil {
			return nil, err
		}
		e.expires, e.revoked = expires.Int64, revoked.Valid
		out[id] = e
	}
	return out, rows.Err()
}

// ParseExpiry parses a token lifetime: a Go duration ("720h") or a whole
// number of days ("30d"); "" or "0" means never.
func ParseExpiry(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" || s == "never" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(d, "%d", &n); err != nil || fmt.Sprint(n) != d || n <= 0 || n > 3650 {
			return 0, invalidf("expires %q: want a duration like 720h or a number of days like 30d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, invalidf("expires %q: want a duration like 720h or a number of days like 30d", s)
	}
	return d, nil
}
