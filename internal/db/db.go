// Package db opens the hub's metadata database: one SQLite file in the data
// directory (<data-dir>/sysmonstm.db) holding what is not a time series —
// alert rules, alert state and history, silences, notifiers, agent tokens,
// users and sessions. The hub and the admin commands (`sysmonstm token`,
// `sysmonstm user`) open it at the same time; SQLite's WAL mode and busy
// timeout let them share it safely.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/sysmonstm/sysmonstm/internal/diskspace"
)

// FileName is the database's name inside the data directory.
const FileName = "sysmonstm.db"

// Path returns the database path for a data directory.
func Path(dataDir string) string { return filepath.Join(dataDir, FileName) }

// ErrMissing reports a data directory that holds a hub's data but no
// database: the file was deleted, moved or not restored with the rest.
var ErrMissing = errors.New("metadata database missing")

// hubData returns the entries of a data directory that only a hub that
// has already run (and so created the database) leaves behind.
func hubData() []string {
	return []string{"tsdb", "machines.json", "admin-password", FileName + "-wal"}
}

// Open opens the database in dataDir with WAL journaling, a 5 s busy timeout
// and foreign keys on. It creates the database in a new data directory, but
// refuses with ErrMissing to create one next to a hub's existing data: a new
// database would silently mean a new admin and no tokens, users, rules,
// notifiers or silences. An empty file counts as a database, so creating
// one is how an operator starts afresh on purpose.
func Open(dataDir string) (*sql.DB, error) {
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if err := checkNotLost(dataDir); err != nil {
		return nil, err
	}
	path := Path(dataDir)
	dsn := "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	d, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// SQLite allows one writer; a small pool keeps readers concurrent
	// without piling up writers that only wait on the busy timeout.
	d.SetMaxOpenConns(4)
	if err := d.PingContext(context.Background()); err != nil {
		_ = d.Close()
		return nil, fmt.Errorf("open %s: %w", path, nameDiskFull(dataDir, err))
	}
	if err := os.Chmod(path, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
		_ = d.Close()
		return nil, fmt.Errorf("restrict %s: %w", path, err)
	}
	return d, nil
}

// SQLite result codes (https://sqlite.org/rescode.html): the primary code
// is the low byte of an extended one.
const (
	sqliteIOErr = 10
	sqliteFull  = 13
)

// diskFullBelow is the free space, in bytes, under which an SQLite I/O error
// is taken for a full disk: SQLite reports a shared-memory or journal file
// it cannot grow as "disk I/O error", not as SQLITE_FULL.
const diskFullBelow = 1 << 20

// nameDiskFull returns err prefixed with "disk full" when it is SQLite's
// way of saying the disk is full, so an operator is not left with "disk
// I/O error (4874)".
func nameDiskFull(dir string, err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch code := se.Code() & 0xff; {
	case code == sqliteFull:
	case code == sqliteIOErr:
		if u, err := diskspace.Stat(dir); err != nil || u.Avail >= diskFullBelow {
			return err
		}
	default:
		return err
	}
	u, _ := diskspace.Stat(dir)
	return fmt.Errorf("disk full: %d bytes free on the filesystem of %s; free space there and try again: %w", u.Avail, dir, err)
}

// checkNotLost returns ErrMissing, explained, when dataDir has no database
// but holds a hub's data.
func checkNotLost(dataDir string) error {
	path := Path(dataDir)
	if _, err := os.Stat(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return nil // present, or unreadable: opening it reports why
	}
	var found []string
	for _, name := range hubData() {
		if _, err := os.Lstat(filepath.Join(dataDir, name)); err == nil {
			found = append(found, name)
		}
	}
	if len(found) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s holds a hub's data (%s) but no %s; it was deleted or not restored. "+
		"A new one would mean a new admin password and no agent tokens, users, alert rules, notifiers or silences, so nothing was changed. "+
		"Restore %s from a backup (delete any %s-wal and %s-shm beside it first); "+
		"or, to start over with an empty one on purpose (stored history is kept), delete those two files if present and create an empty file: touch %s",
		ErrMissing, dataDir, strings.Join(found, ", "), FileName, FileName, FileName, FileName, path)
}

// Migrate brings one component's tables up to date. steps are SQL scripts
// applied in order, each once: the number applied so far is kept per
// component in the schema_versions table. Append new steps; never edit or
// reorder applied ones. On PostgreSQL the migration holds an advisory lock
// for its transaction, so hubs starting together apply each step once.
func Migrate(ctx context.Context, d *sql.DB, component string, steps []string) error {
	tx, err := d.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", component, err)
	}
	defer func() { _ = tx.Rollback() }()
	if IsPostgres(d) {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock("+strconv.FormatInt(migrateLock, 10)+")"); err != nil {
			return fmt.Errorf("migrate %s: take the migration lock: %w", component, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_versions (
		component TEXT PRIMARY KEY,
		version   INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("migrate %s: %w", component, err)
	}
	var have int
	err = tx.QueryRowContext(ctx, `SELECT version FROM schema_versions WHERE component = ?`, component).Scan(&have)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("migrate %s: %w", component, err)
	}
	if have > len(steps) {
		return fmt.Errorf("migrate %s: the database is at schema version %d, this binary knows %d: it was written by a newer sysmonstm", component, have, len(steps))
	}
	if have == len(steps) {
		return nil
	}
	for i := have; i < len(steps); i++ {
		if _, err := tx.ExecContext(ctx, steps[i]); err != nil {
			return fmt.Errorf("migrate %s to version %d: %w", component, i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_versions(component, version) VALUES(?, ?)
		ON CONFLICT(component) DO UPDATE SET version = excluded.version`, component, len(steps)); err != nil {
		return fmt.Errorf("migrate %s: %w", component, err)
	}
	return tx.Commit()
}

// migrateLock is the PostgreSQL advisory lock key of migrations (any
// fixed number; "sysmonst" in ASCII).
const migrateLock int64 = 0x7379736d6f6e7374
