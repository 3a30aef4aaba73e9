package auth

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/db"
)

// component is this package's name in the schema_versions table.
const component = "auth"

// migrations are the auth tables. Append steps; never edit applied ones.
// Times are unix milliseconds.
var migrations = []string{
	`CREATE TABLE auth_settings (
		name  TEXT PRIMARY KEY,
		value BLOB NOT NULL
	);
	CREATE TABLE agent_tokens (
		id           TEXT PRIMARY KEY,
		hash         BLOB NOT NULL,
		name         TEXT NOT NULL DEFAULT '',
		machine      TEXT NOT NULL DEFAULT '',
		created_at   INTEGER NOT NULL,
		expires_at   INTEGER,
		last_used_at INTEGER,
		revoked_at   INTEGER
	);
	CREATE TABLE agent_token_machines (
		token_id   TEXT NOT NULL REFERENCES agent_tokens(id) ON DELETE CASCADE,
		machine    TEXT NOT NULL,
		first_seen INTEGER NOT NULL,
		PRIMARY KEY (token_id, machine)
	);
	CREATE TABLE users (
		name          TEXT PRIMARY KEY,
		role          TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
		password_hash TEXT NOT NULL,
		created_at    INTEGER NOT NULL,
		updated_at    INTEGER NOT NULL
	);
	CREATE TABLE sessions (
		id_hash      BLOB PRIMARY KEY,
		user_name    TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE ON UPDATE CASCADE,
		csrf         TEXT NOT NULL,
		created_at   INTEGER NOT NULL,
		last_seen_at INTEGER NOT NULL
	);
	CREATE INDEX sessions_user ON sessions(user_name);`,
}

// pgMigrations are migrations for PostgreSQL: the same tables (times are
// BIGINT unix milliseconds, BLOB is BYTEA), and triggers that NOTIFY the
// other hubs (db.Watch) of token changes. The two lists are versioned
// apart (a database is one or the other): a schema change appends a step
// to each.
var pgMigrations = []string{
	`CREATE TABLE auth_settings (
		name  TEXT PRIMARY KEY,
		value BYTEA NOT NULL
	);
	CREATE TABLE agent_tokens (
		id           TEXT PRIMARY KEY,
		hash         BYTEA NOT NULL,
		name         TEXT NOT NULL DEFAULT '',
		machine      TEXT NOT NULL DEFAULT '',
		created_at   BIGINT NOT NULL,
		expires_at   BIGINT,
		last_used_at BIGINT,
		revoked_at   BIGINT
	);
	CREATE TABLE agent_token_machines (
		token_id   TEXT NOT NULL REFERENCES agent_tokens(id) ON DELETE CASCADE,
		machine    TEXT NOT NULL,
		first_seen BIGINT NOT NULL,
		PRIMARY KEY (token_id, machine)
	);
	CREATE TABLE users (
		name          TEXT PRIMARY KEY,
		role          TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
		password_hash TEXT NOT NULL,
		created_at    BIGINT NOT NULL,
		updated_at    BIGINT NOT NULL
	);
	CREATE TABLE sessions (
		id_hash      BYTEA PRIMARY KEY,
		user_name    TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE ON UPDATE CASCADE,
		csrf         TEXT NOT NULL,
		created_at   BIGINT NOT NULL,
		last_seen_at BIGINT NOT NULL
	);
	CREATE INDEX sessions_user ON sessions(user_name);
	` + db.PGNotifyFunction + `
	CREATE TRIGGER agent_tokens_notify AFTER INSERT OR DELETE OR TRUNCATE ON agent_tokens
		FOR EACH STATEMENT EXECUTE FUNCTION sysmonstm_notify();
	CREATE TRIGGER agent_tokens_update_notify AFTER UPDATE OF hash, machine, expires_at, revoked_at ON agent_tokens
		FOR EACH STATEMENT EXECUTE FUNCTION sysmonstm_notify();`,
}

// Defaults of Options.
const (
	DefaultMaxMachinesPerToken = 100
	DefaultSessionIdle         = 24 * time.Hour
	DefaultSessionMaxAge       = 7 * 24 * time.Hour
	DefaultTokenCacheTTL       = time.Second
)

// Options configure a Store; zero values take the defaults above.
type Options struct {
	// MaxMachinesPerToken bounds the distinct machine ids one unbound token
	// may write as. The ids are recorded in the database, so the count
	// survives restarts.
	MaxMachinesPerToken int
	// SessionIdle ends a session not used for this long.
	SessionIdle time.Duration
	// SessionMaxAge ends a session this long after login, used or not.
	SessionMaxAge time.Duration
	// TokenCacheTTL is how stale the in-memory copy of the token table may
	// get: tokens created or revoked by another process (the CLI) take
	// effect within it.
	TokenCacheTTL time.Duration
	Logger        *slog.Logger
	Now           func() time.Time
}

// Store keeps agent tokens, users and sessions in the metadata database.
// The hub and the `sysmonstm token` / `sysmonstm user` commands each open
// one on the same SQLite file.
type Store struct {
	db   *sql.DB
	opts Options
	log  *slog.Logger
	now  func() time.Time
	key  []byte // HMAC-SHA256 key of token secrets, 32 bytes, kept in auth_settings

	tokens tokenCache

	machinesMu sync.Mutex                     // protects machines
	machines   map[string]map[string]struct{} // token id → machine ids it wrote as

	usedMu sync.Mutex       // protects used
	used   map[string]int64 // token id → last use (unix ms), not yet written

	localMu sync.Mutex // protects local
	local   *localCred
}

// localCred is `up` mode's in-memory credential for its own agent.
type localCred struct {
	token   string
	machine string
}

// Open migrates the auth tables on d and loads the token key (creating it
// on first use).
func Open(ctx context.Context, d *sql.DB, opts Options) (*Store, error) {
	if opts.MaxMachinesPerToken <= 0 {
		opts.MaxMachinesPerToken = DefaultMaxMachinesPerToken
	}
	if opts.SessionIdle <= 0 {
		opts.SessionIdle = DefaultSessionIdle
	}
	if opts.SessionMaxAge <= 0 {
		opts.SessionMaxAge = DefaultSessionMaxAge
	}
	if opts.TokenCacheTTL <= 0 {
		opts.TokenCacheTTL = DefaultTokenCacheTTL
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := db.Migrate(ctx, d, component, db.ForDialect(d, migrations, pgMigrations)); err != nil {
		return nil, err
	}
	s := &Store{
		db:       d,
		opts:     opts,
		log:      opts.Logger,
		now:      opts.Now,
		machines: map[string]map[string]struct{}{},
		used:     map[string]int64{},
	}
	var err error
	if s.key, err = loadKey(ctx, d); err != nil {
		return nil, err
	}
	return s, nil
}

// loadKey returns the token HMAC key, creating it once. Two processes
// racing both insert-or-ignore, then read the same winner.
func loadKey(ctx context.Context, d *sql.DB) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("generate token key: %w", err)
	}
	if _, err := d.ExecContext(ctx, `INSERT INTO auth_settings(name, value) VALUES('token_key', ?) ON CONFLICT(name) DO NOTHING`, fresh); err != nil {
		return nil, fmt.Errorf("store token key: %w", err)
	}
	var key []byte
	if err := d.QueryRowContext(ctx, `SELECT value FROM auth_settings WHERE name = 'token_key'`).Scan(&key); err != nil {
		return nil, fmt.Errorf("load token key: %w", err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("load token key: %d bytes, want 32 (the database is damaged)", len(key))
	}
	return key, nil
}

// Errors of the Store. API handlers map them to HTTP statuses.
var (
	// ErrNotFound: no such token, user or session.
	ErrNotFound = errors.New("not found")
	// ErrExists: a user of that name exists.
	ErrExists = errors.New("already exists")
	// ErrLastAdmin: the change would leave no admin.
	ErrLastAdmin = errors.New("cannot remove or demote the last admin")
	// ErrBadCredentials: unknown user or wrong password (deliberately not
	// telling which).
	ErrBadCredentials = errors.New("wrong username or password")
	// ErrStoreUnavailable is what HTTP clients are told (503) when the
	// metadata database fails: agents already connected keep working from
	// the token cache, logins and session checks wait for it.
	ErrStoreUnavailable = errors.New("metadata database unavailable (see the hub's log); try again shortly")
)

// InvalidError is an input that fails validation (HTTP 400).
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

func invalidf(format string, args ...any) error {
	return &InvalidError{Msg: fmt.Sprintf(format, args...)}
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func nullTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMS(v.Int64)
	return &t
}
