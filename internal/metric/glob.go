package metric

import "unicode/utf8"

// Wildcards says which characters of a glob are wildcards. '*' always is.
type Wildcards uint8

const (
	// Star: '*' matches any run of characters; '?' stands for itself.
	// The syntax of alert rules and silences.
	Star Wildcards = iota
	// StarQuestion: '*' matches any run of characters, '?' exactly one.
	// The syntax of the edge filters.
	StarQuestion
)

// Glob reports whether s matches pattern. '*' matches any run of
// characters, including none and including '/'; with StarQuestion, '?'
// matches exactly one UTF-8 character (not one byte); every other byte
// stands for itself. A pattern without wildcards matches only itself.
//
// It runs in O(len(pattern)·len(s)) time at worst and linear in practice
// (one backtrack point, the last '*'), and allocates nothing.
func Glob(pattern, s string, w Wildcards) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == '?' && w == StarQuestion:
			p++
			i += runeLen(s[i:])
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark += runeLen(s[mark:])
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// runeLen is the length in bytes of the first character of s (1 for a
// byte that starts no valid UTF-8 sequence); s is not empty.
func runeLen(s string) int {
	_, n := utf8.DecodeRuneInString(s)
	return n
}

// LabelMatcher requires a label's value to match the glob Value (Not
// false) or not to match it (Not true). A missing label has the value "".
type LabelMatcher struct {
	Name  string
	Value string
	Not   bool
}

// Matches reports whether the label's value v passes the matcher, with
// Value read in syntax w.
func (m LabelMatcher) Matches(v string, w Wildcards) bool {
	return Glob(m.Value, v, w) != m.Not
}
