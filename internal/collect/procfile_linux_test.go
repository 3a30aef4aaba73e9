package collect

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestKeptProcFile: a kept file reads the current content every time
// through one descriptor, and a descriptor that went bad is replaced.
func TestKeptProcFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stat")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil { // in place, as the kernel's files change
			t.Fatal(err)
		}
	}
	f := newKeptProcFile(path)
	read := func(want string) {
		t.Helper()
		b, err := f.read()
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != want {
			t.Fatalf("read %q, want %q", b, want)
		}
	}
	write("cpu 1 2 3\n")
	read("cpu 1 2 3\n")
	fd := f.fd.fd
	write("cpu 4 5 6 7 8\n")
	read("cpu 4 5 6 7 8\n")
	write(string(bytes.Repeat([]byte("x"), 10000))) // larger than the buffer
	read(string(bytes.Repeat([]byte("x"), 10000)))
	write("short\n")
	read("short\n")
	if !f.fd.open || f.fd.fd != fd {
		t.Fatalf("descriptor %d (open %v) after reads, want %d kept", f.fd.fd, f.fd.open, fd)
	}
	unix.Close(fd) // the descriptor goes bad under the collector
	read("short\n")
	if !f.fd.open {
		t.Fatal("descriptor not reopened")
	}
	unix.Close(f.fd.fd)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := f.read(); err == nil {
		t.Fatal("read of a removed file whose descriptor failed succeeded")
	}
	if f.fd.open {
		t.Fatal("descriptor kept after a failed open")
	}
}

// TestKeptProcFileReal reads real procfs files through kept descriptors:
// each read sees the kernel's current content.
func TestKeptProcFileReal(t *testing.T) {
	for _, name := range []string{"uptime", "stat", "net/dev", "diskstats", "meminfo"} {
		path := filepath.Join("/proc", name)
		if _, err := os.Stat(path); err != nil {
			t.Logf("%s: %v", path, err)
			continue
		}
		f := newKeptProcFile(path)
		for range 3 {
			got, err := f.read()
			if err != nil {
				t.Fatal(err)
			}
			fresh, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// Counters move between the two reads; the lines do not.
			if bytes.Count(got, []byte("\n")) != bytes.Count(fresh, []byte("\n")) || len(got) == 0 {
				t.Errorf("%s through a kept descriptor: %d bytes, %d lines; fresh: %d bytes, %d lines",
					path, len(got), bytes.Count(got, []byte("\n")), len(fresh), bytes.Count(fresh, []byte("\n")))
			}
		}
		unix.Close(f.fd.fd)
	}
	// Uptime moves on between reads of one descriptor.
	f := newKeptProcFile("/proc/uptime")
	a, err := f.read()
	if err != nil {
		t.Fatal(err)
	}
	first := string(a)
	deadline := 200
	for ; deadline > 0; deadline-- {
		b, err := f.read()
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != first {
			break
		}
		unix.Nanosleep(&unix.Timespec{Nsec: 5e6}, nil)
	}
	if deadline == 0 {
		t.Errorf("/proc/uptime read %q for a second through one descriptor", first)
	}
	unix.Close(f.fd.fd)
}
