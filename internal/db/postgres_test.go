package db_test

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sysmonstm/sysmonstm/internal/db"
	"github.com/sysmonstm/sysmonstm/internal/db/dbtest"
)

func TestRebind(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`SELECT a FROM t WHERE x = ? AND y IN (?, ?)`, `SELECT a FROM t WHERE x = $1 AND y IN ($2, $3)`},
		{`INSERT INTO t(a, b) VALUES(?, '?') -- why?` + "\n" + `ON CONFLICT(a) DO UPDATE SET b = ?`,
			`INSERT INTO t(a, b) VALUES($1, '?') -- why?` + "\n" + `ON CONFLICT(a) DO UPDATE SET b = $2`},
		{`SELECT "a?b", 'it''s ?', ? /* ? */`, `SELECT "a?b", 'it''s ?', $1 /* ? */`},
		{`SELECT $fn$ ? $fn$, $$?$$, ?`, `SELECT $fn$ ? $fn$, $$?$$, $1`},
		{`SELECT 'unterminated ?`, `SELECT 'unterminated ?`},
	} {
		if got := db.Rebind(c.in); got != c.want {
			t.Errorf("Rebind(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func FuzzRebind(f *testing.F) {
	for _, s := range []string{`SELECT ? FROM t WHERE a = '?'`, `$x$?$x$`, `/* ? */ ?`, `"?"?`, `$1 ?`, `$`, `'`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		out := db.Rebind(q)
		if !strings.Contains(q, "?") && out != q {
			t.Fatalf("a query without ? changed: %q → %q", q, out)
		}
		if strings.Count(out, "?") > strings.Count(q, "?") {
			t.Fatalf("more ? after rebinding: %q → %q", q, out)
		}
	})
}

func TestParsePostgresAndRedact(t *testing.T) {
	for _, bad := range []string{"", "   ", "postgres://u:secret@[::1", "postgres://u:secret@h:notaport/db"} {
		_, err := db.ParsePostgres(bad)
		if err == nil {
			t.Errorf("ParsePostgres(%q): no error", bad)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("ParsePostgres(%q): the error shows the password: %v", bad, err)
		}
	}
	cfg, err := db.ParsePostgres("postgres://u:secret@127.0.0.1:5432/db")
	if err != nil || cfg.ConnectTimeout != 5*time.Second {
		t.Fatalf("ParsePostgres: %v %+v", err, cfg)
	}
	for in, want := range map[string]string{
		"postgres://u:secret@h/db":               "postgres://u:xxxxx@h/db",
		"postgres://u@h/db":                      "postgres://u@h/db",
		"host=h user=u password=secret dbname=d": "host=h user=u password=xxxxx dbname=d",
	} {
		if got := db.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestMigratePostgresConcurrently: three hubs migrating one fresh database
// at once apply each step once (the advisory lock), and a later run is a
// no-op.
func TestMigratePostgresConcurrently(t *testing.T) {
	dsn := dbtest.NewPostgres(t)
	steps := []string{
		`CREATE TABLE a (x BIGINT); INSERT INTO a VALUES (1)`,
		`INSERT INTO a VALUES (2)`,
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	var dbs []*sql.DB
	for range 3 {
		d, err := db.OpenPostgres(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if !db.IsPostgres(d) {
			t.Fatal("IsPostgres: false")
		}
		dbs = append(dbs, d)
	}
	for _, d := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- db.Migrate(context.Background(), d, "test", steps)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Migrate(context.Background(), dbs[0], "test", steps); err != nil {
		t.Fatal(err)
	}
	var n, sum int
	if err := dbs[0].QueryRow(`SELECT count(*), sum(x) FROM a WHERE x > ?`, 0).Scan(&n, &sum); err != nil || n != 2 || sum != 3 {
		t.Fatalf("rows %d sum %d (%v): each step must run once", n, sum, err)
	}
	err := db.Migrate(context.Background(), dbs[0], "test", steps[:1])
	if err == nil || !strings.Contains(err.Error(), "newer sysmonstm") {
		t.Fatalf("older binary on a newer schema: %v", err)
	}
}

// TestWatch: a committed write NOTIFYs the watcher with its table; when
// its connection is killed it reconnects by itself, reports "" (re-read
// everything) and hears later changes again.
func TestWatch(t *testing.T) {
	dsn := dbtest.NewPostgres(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := db.OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := db.Migrate(ctx, d, "test", []string{`CREATE TABLE things (id TEXT PRIMARY KEY);
		` + db.PGNotifyFunction + `
		CREATE TRIGGER things_notify AFTER INSERT OR UPDATE OR DELETE ON things FOR EACH STATEMENT EXECUTE FUNCTION sysmonstm_notify();`}); err != nil {
		t.Fatal(err)
	}
	changes := make(chan string, 100)
	states := make(chan bool, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = db.Watch(ctx, dsn, db.WatchOptions{
			Retry:    50 * time.Millisecond,
			OnChange: func(table string) { changes <- table },
			OnState:  func(up bool) { states <- up },
		})
	}()
	expect := func(what, want string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case got := <-changes:
				if got == want {
					return
				}
			case <-deadline:
				t.Fatalf("%s: no OnChange(%q)", what, want)
			}
		}
	}
	expect("connected", "")
	if _, err := d.Exec(`INSERT INTO things(id) VALUES(?)`, "a"); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	expect("insert", "things")
	t.Logf("NOTIFY heard %s after the commit", time.Since(began).Round(time.Microsecond))

	// Kill the listener's connection (and the pool's).
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	admin.Close(ctx)
	if n < 2 {
		t.Fatalf("terminated %d connections, want the listener's and the pool's", n)
	}
	select {
	case up := <-states:
		for up { // the first report was "up"
			up = <-states
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the lost connection was not reported")
	}
	expect("reconnected", "")
	// The pool recovers too: a dead connection is replaced.
	var err2 error
	for range 3 {
		if _, err2 = d.Exec(`UPDATE things SET id = ? WHERE id = ?`, "b", "a"); err2 == nil {
			break
		}
	}
	if err2 != nil {
		t.Fatalf("the pool did not recover: %v", err2)
	}
	expect("update after reconnecting", "things")
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return when its context ended")
	}
}
