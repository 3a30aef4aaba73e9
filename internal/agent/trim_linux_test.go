package agent

import (
	"bytes"
	"os"
	"strconv"
	"testing"

	"github.com/sysmonstm/sysmonstm/internal/procmaps"
)

func TestReadOnlyMapping(t *testing.T) {
	const exe = "/usr/bin/sysmonstm agent"
	f := func(line string, wantOK bool, lo, hi uintptr) {
		t.Helper()
		m, parsed := procmaps.Parse([]byte(line))
		ok := parsed && readOnlyMapping(m, exe)
		if ok != wantOK || (ok && (m.Lo != lo || m.Hi != hi)) {
			t.Errorf("readOnlyMapping(%q) = %x, %x, %v; want %x, %x, %v", line, m.Lo, m.Hi, ok, lo, hi, wantOK)
		}
	}
	f("00400000-00a46000 r-xp 00000000 fe:00 9978093                            /usr/bin/sysmonstm agent", true, 0x400000, 0xa46000)
	f("00a46000-010ec000 r--p 00646000 fe:00 9978093 /usr/bin/sysmonstm agent", true, 0xa46000, 0x10ec000)
	f("010ec000-011b3000 rw-p 00cec000 fe:00 9978093 /usr/bin/sysmonstm agent", false, 0, 0) // writable: data
	f("010ec000-011b3000 r--s 00cec000 fe:00 9978093 /usr/bin/sysmonstm agent", false, 0, 0) // shared
	f("00400000-00a46000 r-xp 00000000 fe:00 9978093 /usr/bin/sysmonstm", false, 0, 0)       // another file
	f("00400000-00a46000 r-xp 00000000 fe:00 9978093 /usr/bin/sysmonstm agent (deleted)", false, 0, 0)
	f("7ffcb5ec6000-7ffcb5ee7000 rw-p 00000000 00:00 0                          [stack]", false, 0, 0)
	f("2d3b8a400000-2d3b8ac00000 rw-p 00000000 00:00 0 ", false, 0, 0)
	f("00a46000-00a46000 r--p 00646000 fe:00 9978093 /usr/bin/sysmonstm agent", false, 0, 0) // empty
	f("zz-00a46000 r--p 00646000 fe:00 9978093 /usr/bin/sysmonstm agent", false, 0, 0)
	f("", false, 0, 0)
}

// trimCanary lives in the writable data of the test binary, which
// TrimExecutablePages must leave alone.
var trimCanary = []byte("written before the trim")

// TestTrimExecutablePages trims the test binary itself: its file-backed
// RSS drops, its writable data keeps its contents, and code runs on.
func TestTrimExecutablePages(t *testing.T) {
	trimCanary[0] = 'W'
	before := rssFileKB(t)
	n, err := TrimExecutablePages()
	if err != nil {
		t.Fatal(err)
	}
	after := rssFileKB(t)
	st, err := os.Stat("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("advised %d kB of a %d kB executable; RssFile %d kB → %d kB", n>>10, st.Size()>>10, before, after)
	if n <= 0 || int64(n) > st.Size()+1<<20 {
		t.Errorf("advised %d bytes of a %d-byte executable", n, st.Size())
	}
	if after > before/2 {
		t.Errorf("RssFile %d kB → %d kB after the trim; want at most half", before, after)
	}
	if string(trimCanary) != "Written before the trim" {
		t.Errorf("writable data changed by the trim: %q", trimCanary)
	}
	// Code and read-only data fault back in.
	if _, err := New(Options{Hub: "127.0.0.1:1", MachineID: "m"}, nil); err == nil {
		t.Error("New with a nil source succeeded")
	}
}

// rssFileKB returns this process's file-backed resident memory, kB.
func rssFileKB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := bytes.Cut(b, []byte("RssFile:"))
	if !ok {
		t.Skip("no RssFile in /proc/self/status (kernel before 4.5)")
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	kb, err := strconv.Atoi(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(line), []byte("kB")))))
	if err != nil {
		t.Fatalf("RssFile %q: %v", line, err)
	}
	return kb
}
