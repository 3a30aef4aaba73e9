package procmaps

import (
	"errors"
	"runtime"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		line   string
		lo, hi uintptr
		perms  string
		path   string
		ok     bool
	}{
		{"00400000-00a46000 r-xp 00000000 fe:00 9978093                            /usr/bin/sysmonstm agent", 0x400000, 0xa46000, "r-xp", "/usr/bin/sysmonstm agent", true},
		{"7f0000000000-7f0000100000 r--s 00000000 fd:01 1234   /var/lib/sysmonstm/1m/01J/index (deleted)", 0x7f0000000000, 0x7f0000100000, "r--s", "/var/lib/sysmonstm/1m/01J/index (deleted)", true},
		{"7ffcb5ec6000-7ffcb5ee7000 rw-p 00000000 00:00 0                          [stack]", 0x7ffcb5ec6000, 0x7ffcb5ee7000, "rw-p", "[stack]", true},
		{"2d3b8a400000-2d3b8ac00000 rw-p 00000000 00:00 0 ", 0x2d3b8a400000, 0x2d3b8ac00000, "rw-p", "", true},
		{"00a46000-00a46000 r--p 00646000 fe:00 9978093 /usr/bin/sysmonstm", 0, 0, "", "", false}, // empty range
		{"00a47000-00a46000 r--p 00646000 fe:00 9978093 /usr/bin/sysmonstm", 0, 0, "", "", false}, // reversed
		{"zz-00a46000 r--p 00646000 fe:00 9978093 /usr/bin/sysmonstm", 0, 0, "", "", false},
		{"00400000 r--p 00646000 fe:00 9978093 /usr/bin/sysmonstm", 0, 0, "", "", false},
		{"00400000-00a46000 r-p 00646000 fe:00 9978093 /usr/bin/sysmonstm", 0, 0, "", "", false},
		{"", 0, 0, "", "", false},
	} {
		m, ok := Parse([]byte(c.line))
		if ok != c.ok || m.Lo != c.lo || m.Hi != c.hi || m.Perms != c.perms || string(m.Path) != c.path {
			t.Errorf("Parse(%q) = %#x-%#x %q %q %v; want %#x-%#x %q %q %v", c.line, m.Lo, m.Hi, m.Perms, m.Path, ok, c.lo, c.hi, c.perms, c.path, c.ok)
		}
	}
}

func TestSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc/self/maps is Linux's")
	}
	n := 0
	stop := errors.New("stop")
	err := Self(func(m Mapping) error {
		if m.Hi <= m.Lo || len(m.Perms) != 4 {
			t.Errorf("bad mapping %+v", m)
		}
		if n++; n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Fatalf("Self: %v after %d mappings, want the callback's error after 3", err, n)
	}
}
