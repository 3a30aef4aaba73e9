package db

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMigrateAppliesEachStepOnce(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	steps := []string{`CREATE TABLE a (x INTEGER)`}
	if err := Migrate(ctx, d, "test", steps); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Exec(`INSERT INTO a VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	steps = append(steps, `ALTER TABLE a ADD COLUMN y TEXT`)
	if err := Migrate(ctx, d, "test", steps); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, d, "test", steps); err != nil {
		t.Fatalf("re-running applied steps: %v", err)
	}
	var n int
	if err := d.QueryRow(`SELECT count(*) FROM a WHERE y IS NULL`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows = %d, %v", n, err)
	}
	err = Migrate(ctx, d, "test", steps[:1])
	if err == nil || !strings.Contains(err.Error(), "newer sysmonstm") {
		t.Fatalf("older binary on a newer schema: %v", err)
	}
	st, err := os.Stat(Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
}

func TestTwoHandlesShareTheFile(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := a.Exec(`CREATE TABLE t (v TEXT)`); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Exec(`INSERT INTO t VALUES ('from b')`); err != nil {
		t.Fatal(err)
	}
	var v string
	if err := a.QueryRow(`SELECT v FROM t`).Scan(&v); err != nil || v != "from b" {
		t.Fatalf("got %q, %v", v, err)
	}
}

// TestOpenRefusesALostDatabase: a data directory with a hub's data but no
// database is not silently given a new, empty one; an empty file is the
// operator's explicit way to start afresh, and a new directory just works.
func TestOpenRefusesALostDatabase(t *testing.T) {
	for _, leftover := range hubData() {
		t.Run(leftover, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, leftover)
			if leftover == "tsdb" {
				if err := os.MkdirAll(filepath.Join(p, "raw"), 0o750); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			d, err := Open(dir)
			if !errors.Is(err, ErrMissing) {
				if d != nil {
					d.Close()
				}
				t.Fatalf("Open with %s left and no database: %v, want ErrMissing", leftover, err)
			}
			for _, want := range []string{leftover, "no sysmonstm.db", "Restore sysmonstm.db from a backup", "touch " + Path(dir)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if _, err := os.Stat(Path(dir)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("refused Open created %s: %v", Path(dir), err)
			}
			if leftover == "sysmonstm.db-wal" {
				return // the stale WAL must go before an empty file is used
			}
			if err := os.WriteFile(Path(dir), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			d, err = Open(dir)
			if err != nil {
				t.Fatalf("Open after creating an empty file: %v", err)
			}
			defer d.Close()
			if err := Migrate(context.Background(), d, "test", []string{`CREATE TABLE a (x INTEGER)`}); err != nil {
				t.Fatalf("an empty file is not a usable database: %v", err)
			}
		})
	}
	d, err := Open(filepath.Join(t.TempDir(), "new"))
	if err != nil {
		t.Fatalf("a new data directory: %v", err)
	}
	d.Close()
}
