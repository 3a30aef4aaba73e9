// Package dbtest opens metadata databases for tests, on SQLite or on the
// PostgreSQL server at 127.0.0.1:5432 (SYSMONSTM_TEST_POSTGRES overrides
// the admin URL). Each PostgreSQL database is new, randomly named, and
// dropped when the test ends. Where PostgreSQL does not answer, its tests
// skip, except in CI (CI=true) where they fail. Only _test.go files import
// it.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sysmonstm/sysmonstm/internal/db"
)

// Backends are the metadata database kinds, for tests table-driven over
// them.
var Backends = []string{"sqlite", "postgres"}

// Backend is the backend that tests not table-driven over Backends use:
// SYSMONSTM_TEST_BACKEND=postgres runs them on PostgreSQL; default sqlite.
func Backend() string {
	if os.Getenv("SYSMONSTM_TEST_BACKEND") == "postgres" {
		return "postgres"
	}
	return "sqlite"
}

// AdminURL is the PostgreSQL server tests create their databases on.
func AdminURL() string {
	if u := os.Getenv("SYSMONSTM_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable&connect_timeout=5"
}

// NewPostgres creates a fresh database on the test server and returns its
// URL; it is dropped (connections and all) when t ends.
func NewPostgres(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is required in CI (apt-get install postgresql; pg_ctlcluster … main start): %v", err)
		}
		t.Skipf("PostgreSQL not reachable at %s (install postgresql, or set SYSMONSTM_TEST_POSTGRES): %v", db.Redact(AdminURL()), err)
	}
	defer admin.Close(ctx)
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	name := "sysmonstm_test_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, AdminURL())
		if err != nil {
			t.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// Open opens a fresh, empty metadata database on backend, closed when t
// ends.
func Open(t testing.TB, backend string) *sql.DB {
	t.Helper()
	return OpenAt(t, backend, t.TempDir())
}

var (
	mu    sync.Mutex
	byDir = map[string]string{} // dir → PostgreSQL URL
)

// OpenAt opens the metadata database that belongs to dir on backend, so a
// test can close and reopen "the same" database (a hub restart): on
// SQLite the file in dir, on PostgreSQL a database created on dir's first
// use. It is closed when t ends.
func OpenAt(t testing.TB, backend, dir string) *sql.DB {
	t.Helper()
	var d *sql.DB
	var err error
	switch backend {
	case "sqlite":
		d, err = db.Open(dir)
	case "postgres":
		mu.Lock()
		dsn, ok := byDir[dir]
		mu.Unlock()
		if !ok {
			dsn = NewPostgres(t)
			mu.Lock()
			byDir[dir] = dsn
			mu.Unlock()
		}
		d, err = db.OpenPostgres(context.Background(), dsn)
	default:
		err = fmt.Errorf("unknown backend %q", backend)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}
