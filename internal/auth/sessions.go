package auth

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Session is a logged-in user's session.
type Session struct {
	User string
	Role Role
	// CSRF is the token cookie-authenticated writes must echo in the
	// X-CSRF-Token header.
	CSRF      string
	CreatedAt time.Time
	// ExpiresAt is when the session ends unless used again (idle expiry),
	// never past the absolute limit.
	ExpiresAt time.Time
}

// touchEvery bounds how often a session's last use is written: idle expiry
// is exact to this much.
const touchEvery = time.Minute

func hashSessionToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// CreateSession starts a session for user and returns its token (the
// cookie value and bearer token); only its SHA-256 is stored.
func (s *Store) CreateSession(ctx context.Context, user string) (string, Session, error) {
	var role Role
	if err := s.db.QueryRowContext(ctx, `SELECT role FROM users WHERE name = ?`, user).Scan(&role); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return "", Session{}, fmt.Errorf("user %q: %w", user, ErrNotFound)
		}
		return "", Session{}, fmt.Errorf("create session: %w", err)
	}
	tok, err := newSessionToken()
	if err != nil {
		return "", Session{}, err
	}
	csrf, err := newSessionToken()
	if err != nil {
		return "", Session{}, err
	}
	now := s.now()
	if _, err := s.db.ExecContext(ctx, `INSERT INTO sessions(id_hash, user_name, csrf, created_at, last_seen_at) VALUES(?, ?, ?, ?, ?)`,
		hashSessionToken(tok), user, csrf, ms(now), ms(now)); err != nil {
		return "", Session{}, fmt.Errorf("create session: %w", err)
	}
	return tok, Session{User: user, Role: role, CSRF: csrf, CreatedAt: fromMS(ms(now)), ExpiresAt: s.sessionExpiry(ms(now), ms(now))}, nil
}

func (s *Store) sessionExpiry(created, lastSeen int64) time.Time {
	idle := fromMS(lastSeen).Add(s.opts.SessionIdle)
	abs := fromMS(created).Add(s.opts.SessionMaxAge)
	if abs.Before(idle) {
		return abs
	}
	return idle
}

// LookupSession returns the live session of token, or ErrNotFound for an
// unknown, malformed or expired one (an expired one is deleted). The role
// is read from the user's row, so a role change applies at once.
func (s *Store) LookupSession(ctx context.Context, token string) (Session, error) {
	if !validSessionToken(token) {
		return Session{}, ErrNotFound
	}
	id := hashSessionToken(token)
	var sess Session
	var created, seen int64
	err := s.db.QueryRowContext(ctx, `SELECT s.user_name, u.role, s.csrf, s.created_at, s.last_seen_at
		FROM sessions s JOIN users u ON u.name = s.user_name WHERE s.id_hash = ?`, id).
		Scan(&sess.User, &sess.Role, &sess.CSRF, &created, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrNotFound
	}
	if err != nil {
		return Session{}, fmt.Errorf("look up session: %w", err)
	}
	now := s.now()
	sess.CreatedAt = fromMS(created)
	if !now.Before(s.sessionExpiry(created, seen)) {
		if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, id); err != nil {
			s.log.Warn("delete expired session", "err", err)
		}
		return Session{}, ErrNotFound
	}
	if now.Sub(fromMS(seen)) >= touchEvery {
		seen = ms(now)
		if _, err := s.db.ExecContext(ctx, `UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?`, seen, id); err != nil {
			s.log.Warn("record session use", "err", err)
		}
	}
	sess.ExpiresAt = s.sessionExpiry(created, seen)
	return sess, nil
}

// DeleteSession ends the session of token (logout). Unknown tokens are
// not an error.
func (s *Store) DeleteSession(ctx context.Context, token string) error {
	if !validSessionToken(token) {
		return nil
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, hashSessionToken(token)); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions removes sessions past their idle or absolute
// expiry and returns how many.
func (s *Store) DeleteExpiredSessions(ctx context.Context) (int64, error) {
	now := ms(s.now())
	res, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE last_seen_at <= ? OR created_at <= ?`,
		now-s.opts.SessionIdle.Milliseconds(), now-s.opts.SessionMaxAge.Milliseconds())
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
