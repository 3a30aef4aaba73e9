package db

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// On a full disk SQLite says "disk I/O error (4874)" (it cannot size its
// shared-memory file); Open names the full disk and the directory instead.
// Needs a tmpfs: skipped without the privilege to mount one, except under
// CI=true.
func TestOpenOnFullDiskSaysDiskFull(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=4m,mode=0700"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount tmpfs: %v (CI runs as root and must run this test)", err)
		}
		t.Skipf("mount tmpfs: %v (needs root)", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	data := filepath.Join(dir, "data")
	d, err := Open(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := Migrate(context.Background(), d, "test", []string{`CREATE TABLE t (v TEXT)`}); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, int64(st.Bavail)*int64(st.Bsize)); err != nil {
		t.Fatal(err)
	}

	d, err = Open(data)
	if err == nil {
		err = Migrate(context.Background(), d, "test", []string{`CREATE TABLE t (v TEXT)`, `INSERT INTO t VALUES ('x')`})
		d.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), data) {
		t.Fatalf("open on a full disk: %v; want an error naming the full disk and %s", err, data)
	}
}
