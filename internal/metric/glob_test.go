package metric

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestGlob holds the cases of both users: alert rules and silences (Star)
// and the edge filters (StarQuestion).
func TestGlob(t *testing.T) {
	f := func(w Wildcards, pattern, s string, want bool) {
		t.Helper()
		if got := Glob(pattern, s, w); got != want {
			t.Errorf("Glob(%q, %q, %d) = %v, want %v", pattern, s, w, got, want)
		}
	}
	for _, w := range []Wildcards{Star, StarQuestion} {
		f(w, "*", "", true)
		f(w, "*", "anything/with/slashes", true)
		f(w, "web-*", "web-1", true)
		f(w, "web-*", "db-1", false)
		f(w, "*-prod", "eu/web-prod", true)
		f(w, "/mnt/*", "/mnt/a/b", true)
		f(w, "*-1", "web-1", true)
		f(w, "*-1", "web-12", false)
		f(w, "a*b*c", "axxbyyc", true)
		f(w, "a*b*c", "axxbyy", false)
		f(w, "*a*b*c", "xxaxxbxxcxxc", true)
		f(w, "*a*b*c", "xxaxxbxx", false)
		f(w, "**", "x", true)
		f(w, "exact", "exact", true)
		f(w, "exact", "exac", false)
		f(w, "exact", "exactly", false)
		f(w, "", "", true)
		f(w, "", "x", false)
		f(w, "*é", "caféé", true)
		// Pathological backtracking stays fast.
		f(w, "a*a*a*a*b", strings.Repeat("a", 100), false)
		f(w, strings.Repeat("*a", 20)+"b", strings.Repeat("a", 200), false)
	}
	f(StarQuestion, "web-?", "web-1", true)
	f(StarQuestion, "web-?", "web-12", false)
	f(StarQuestion, "web-?", "web-é", true) // ? is one character, not one byte
	f(StarQuestion, "*?", "", false)
	// In alert globs '?' is not a wildcard.
	f(Star, "web-?", "web-1", false)
	f(Star, "web-?", "web-?", true)
	f(Star, "what?*", "what?now", true)
}

func TestLabelMatcher(t *testing.T) {
	f := func(m LabelMatcher, w Wildcards, v string, want bool) {
		t.Helper()
		if got := m.Matches(v, w); got != want {
			t.Errorf("%+v.Matches(%q, %d) = %v, want %v", m, v, w, got, want)
		}
	}
	f(LabelMatcher{Name: "cpu", Value: "total"}, Star, "total", true)
	f(LabelMatcher{Name: "cpu", Value: "total"}, Star, "0", false)
	f(LabelMatcher{Name: "cpu", Value: ""}, Star, "", true) // a missing label
	f(LabelMatcher{Name: "dev", Value: "/dev/sd*"}, Star, "/dev/sda1", true)
	f(LabelMatcher{Name: "if", Value: "veth*", Not: true}, StarQuestion, "veth12", false)
	f(LabelMatcher{Name: "if", Value: "veth*", Not: true}, StarQuestion, "eth0", true)
	f(LabelMatcher{Name: "if", Value: "eth?", Not: true}, Star, "eth0", true)
}

// globRef is the definition Glob implements, by recursion over characters.
func globRef(p, s string, w Wildcards) bool {
	if p == "" {
		return s == ""
	}
	switch {
	case p[0] == '*':
		for i := 0; ; {
			if globRef(p[1:], s[i:], w) {
				return true
			}
			if i == len(s) {
				return false
			}
			_, n := utf8.DecodeRuneInString(s[i:])
			i += n
		}
	case p[0] == '?' && w == StarQuestion:
		if s == "" {
			return false
		}
		_, n := utf8.DecodeRuneInString(s)
		return globRef(p[1:], s[n:], w)
	}
	return s != "" && p[0] == s[0] && globRef(p[1:], s[1:], w)
}

func FuzzGlob(f *testing.F) {
	f.Add("web-*", "web-1")
	f.Add("*a?b*", "xaébyy")
	f.Add("a*?*c", "aXYc")
	f.Add("é?*", "éé")
	f.Fuzz(func(t *testing.T, p, s string) {
		if len(p) > 12 || len(s) > 24 || !utf8.ValidString(p) || !utf8.ValidString(s) {
			return // the reference is exponential; label values are valid UTF-8
		}
		for _, w := range []Wildcards{Star, StarQuestion} {
			if got, want := Glob(p, s, w), globRef(p, s, w); got != want {
				t.Fatalf("Glob(%q, %q, %d) = %v, reference %v", p, s, w, got, want)
			}
		}
	})
}
