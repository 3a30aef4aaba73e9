package db

import (
	"context"
	"os"
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
