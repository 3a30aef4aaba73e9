package collect

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestParseDirSpecs(t *testing.T) {
	ds, err := ParseDirSpecs(" postgresql.service=/var/lib/postgresql, nginx.service=/var/log/nginx/ ")
	if err != nil || len(ds) != 2 || ds[0] != (DirSpec{"postgresql.service", "/var/lib/postgresql"}) || ds[1].Path != "/var/log/nginx" {
		t.Fatalf("got %+v, %v", ds, err)
	}
	if ds, err := ParseDirSpecs(""); err != nil || ds != nil {
		t.Fatalf("empty: %v %v", ds, err)
	}
	for in, want := range map[string]string{
		"nopath":           "want SERVICE=/absolute/path",
		"svc=relative/dir": "must be absolute",
		"=/x":              "want SERVICE",
		"a=/x,b=/x/":       "listed twice",
		"a\x1b[31m=/x":     "control characters",
	} {
		if _, err := ParseDirSpecs(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}

// blocks is the allocated size of path as du counts it.
func blocks(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Blocks * 512
}

func TestDuDirCountsLikeDu(t *testing.T) {
	root := t.TempDir()
	sub := filepath.Join(root, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(sub, "big")
	if err := os.WriteFile(big, make([]byte, 256<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	small := filepath.Join(root, "small")
	if err := os.WriteFile(small, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A hard link counts once; a symlink to a big file outside is not followed.
	if err := os.Link(big, filepath.Join(root, "big-link")); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "sym")); err != nil {
		t.Fatal(err)
	}
	want := blocks(t, root) + blocks(t, sub) + blocks(t, big) + blocks(t, small) + blocks(t, filepath.Join(root, "sym"))
	r, err := duDir(context.Background(), root, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if r.bytes != want || r.entries != 6 || r.truncated {
		t.Fatalf("got %+v, want %d bytes over 6 entries", r, want)
	}
	if r.bytes < 256<<10 || r.bytes >= 1<<20 {
		t.Fatalf("size %d: the big file must count once and the symlink target not at all", r.bytes)
	}

	r, err = duDir(context.Background(), root, 3)
	if err != nil || !r.truncated || r.entries != 3 {
		t.Fatalf("entry bound: %+v, %v", r, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := duDir(ctx, root, 1000); err == nil {
		t.Fatal("a cancelled walk reported no error")
	}
	if _, err := duDir(context.Background(), small, 1000); err == nil {
		t.Fatal("a file is not a directory")
	}
}

func TestDirSizeSamples(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "var", "lib", "db")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "f"), make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	c := NewDirSize(Options{RootFS: root, DirSizes: []DirSpec{{"db.service", "/var/lib/db"}, {"gone.service", "/nope"}}})
	ss, err := c.fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, s := range ss {
		got[s.Name+"/"+s.Labels.Get("service")+"/"+s.Labels.Get("path")] = s.Value
	}
	if got["directory_size_bytes/db.service//var/lib/db"] < 8192 || got["directory_files/db.service//var/lib/db"] != 2 ||
		got["directory_scan_complete/db.service//var/lib/db"] != 1 {
		t.Fatalf("samples %v", got)
	}
	if v, ok := got["directory_scan_complete/gone.service//nope"]; !ok || v != 0 {
		t.Fatalf("a missing directory must report directory_scan_complete 0: %v", got)
	}
	if _, ok := got["directory_size_bytes/gone.service//nope"]; ok {
		t.Fatal("a missing directory must have no size")
	}
}
