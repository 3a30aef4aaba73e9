package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// The metadata database is SQLite (Open) for one hub, or PostgreSQL
// (OpenPostgres) shared by several. Both are a *sql.DB and take the same
// queries: they are written for SQLite ("?" placeholders, ON CONFLICT …
// DO UPDATE SET x = excluded.x, which PostgreSQL also speaks), and the
// PostgreSQL connections rewrite the placeholders to $1, $2, … as they
// send them. What differs is the schema (types, triggers), so each
// component keeps one list of migrations per dialect (ForDialect).

// Channel is the PostgreSQL NOTIFY channel the schema's triggers signal on:
// the payload is the name of the table that changed (see Watch).
const Channel = "sysmonstm"

// PGNotifyFunction creates the trigger function of the PostgreSQL schemas:
// AFTER … FOR EACH STATEMENT triggers calling it NOTIFY Channel with the
// table's name when the write commits.
const PGNotifyFunction = `CREATE OR REPLACE FUNCTION sysmonstm_notify() RETURNS trigger LANGUAGE plpgsql AS $fn$
	BEGIN
		PERFORM pg_notify('` + Channel + `', TG_TABLE_NAME);
		RETURN NULL;
	END
	$fn$;`

// OpenPostgres connects to the PostgreSQL database at dsn (a postgres://
// URL or a key=value connection string) and checks that it answers.
func OpenPostgres(ctx context.Context, dsn string) (*sql.DB, error) {
	cfg, err := ParsePostgres(dsn)
	if err != nil {
		return nil, err
	}
	d := sql.OpenDB(pgConnector{stdlib.GetConnector(*cfg)})
	// A hub's metadata traffic is light; a few connections keep logins,
	// token checks and alert writes from queueing behind one another.
	d.SetMaxOpenConns(8)
	d.SetMaxIdleConns(4)
	d.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := d.PingContext(pctx); err != nil {
		_ = d.Close()
		return nil, fmt.Errorf("connect to PostgreSQL %s: %w", Redact(dsn), err)
	}
	return d, nil
}

// ParsePostgres parses and checks a PostgreSQL connection string; a connect
// timeout of 5 s applies unless it sets one.
func ParsePostgres(dsn string) (*pgx.ConnConfig, error) {
	if strings.TrimSpace(dsn) == "" {
		return nil, errors.New("postgres: empty connection URL")
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's error quotes the URL, password included.
		return nil, fmt.Errorf("postgres: invalid connection URL %s: want postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=…]", Redact(dsn))
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	return cfg, nil
}

// Redact returns dsn with any password replaced by "xxxxx", for logs and
// errors.
func Redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		return u.String()
	}
	if scheme, rest, ok := strings.Cut(dsn, "://"); ok {
		// A URL that does not parse: hide what could be a password.
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if user, _, ok := strings.Cut(rest[:at], ":"); ok {
				return scheme + "://" + user + ":xxxxx" + rest[at:]
			}
		}
		return dsn
	}
	// key=value form: hide password=….
	fields := strings.Fields(dsn)
	for i, f := range fields {
		if k, _, ok := strings.Cut(f, "="); ok && strings.EqualFold(k, "password") {
			fields[i] = k + "=xxxxx"
		}
	}
	return strings.Join(fields, " ")
}

// IsPostgres reports whether d was opened by OpenPostgres.
func IsPostgres(d *sql.DB) bool {
	_, ok := d.Driver().(pgDriver)
	return ok
}

// ForDialect returns sqlite or postgres, whichever suits d.
func ForDialect[T any](d *sql.DB, sqlite, postgres T) T {
	if IsPostgres(d) {
		return postgres
	}
	return sqlite
}

// pgConnector hands out pgx connections that rewrite placeholders.
type pgConnector struct{ c driver.Connector }

func (p pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	c, err := p.c.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := c.(*stdlib.Conn)
	if !ok {
		_ = c.Close()
		return nil, fmt.Errorf("postgres: unexpected driver connection %T", c)
	}
	return &pgConn{sc}, nil
}

func (p pgConnector) Driver() driver.Driver { return pgDriver{p.c.Driver()} }

// pgDriver marks a *sql.DB as PostgreSQL (IsPostgres).
type pgDriver struct{ driver.Driver }

// pgConn is a pgx connection whose queries are rebound; every other
// method (transactions, pings, session reset, value checks) is pgx's.
type pgConn struct{ *stdlib.Conn }

func (c *pgConn) Prepare(query string) (driver.Stmt, error) {
	return c.Conn.Prepare(Rebind(query))
}

func (c *pgConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, Rebind(query))
}

func (c *pgConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.ExecContext(ctx, Rebind(query), args)
}

func (c *pgConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.QueryContext(ctx, Rebind(query), args)
}

// Rebind rewrites SQLite's "?" placeholders to PostgreSQL's $1, $2, … A
// "?" inside a quoted string, a quoted identifier, a dollar-quoted body or
// a comment is left alone.
func Rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '?':
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		case c == '\'' || c == '"':
			j := closing(q, i+1, string(c))
			b.WriteString(q[i:j])
			i = j - 1
			continue
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := closing(q, i+2, "\n")
			b.WriteString(q[i:j])
			i = j - 1
			continue
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			j := closing(q, i+2, "*/")
			b.WriteString(q[i:j])
			i = j - 1
			continue
		case c == '$':
			// $tag$ … $tag$ (tag may be empty); a $1 is not a quote.
			if end := strings.IndexByte(q[i+1:], '$'); end >= 0 && validDollarTag(q[i+1:i+1+end]) {
				tag := q[i : i+end+2]
				j := closing(q, i+len(tag), tag)
				b.WriteString(q[i:j])
				i = j - 1
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// closing returns the index just past the first end at or after from, or
// len(q) when there is none.
func closing(q string, from int, end string) int {
	if from > len(q) {
		return len(q)
	}
	k := strings.Index(q[from:], end)
	if k < 0 {
		return len(q)
	}
	return from + k + len(end)
}

func validDollarTag(tag string) bool {
	for i, r := range tag {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
