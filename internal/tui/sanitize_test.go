package tui

import (
	"strings"
	"testing"
)

func TestClean(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := Clean(in); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
	f("web-1", "web-1")
	f("évier-ü", "évier-ü")
	f("evil\x1b]0;pwned\x07\x1b[2J", "evil?]0;pwned??[2J")
	f("a\rb", "a?b")
	f("csi\u009b31m", "csi?31m")
	f("bad\xff\xfeutf8", "bad??utf8")
	f("rtl\u202egnp.exe", "rtl?gnp.exe")
	f("iso\u2066x\u2069", "iso?x?")
	f("tab\there\nnl", "tab here nl")
	f("del\x7f", "del?")
	f(strings.Repeat("x", 300), strings.Repeat("x", maxTextRunes))
}

func FuzzClean(f *testing.F) {
	f.Add("evil\x1b]0;pwned\x07\x1b[2J")
	f.Add("\xc2\x9b1m")
	f.Fuzz(func(t *testing.T, s string) {
		out := Clean(s)
		for _, r := range out {
			if unsafeRune(r) && r != '\t' {
				t.Fatalf("Clean(%q) kept %U", s, r)
			}
		}
		if strings.ContainsRune(out, 0x1b) {
			t.Fatalf("ESC survived: %q", out)
		}
	})
}
