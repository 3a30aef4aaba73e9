package tui

import (
	"strings"
	"unicode/utf8"
)

// maxTextRunes bounds how much of one agent string is kept for display.
const maxTextRunes = 256

// Clean makes a string that came from an agent (hostname, label, mount
// point, process name) safe to draw: C0 and C1 control characters (ESC, CSI
// 0x9b, BEL, CR, …), DEL, bidirectional overrides and isolates, and invalid
// UTF-8 each become "?", so no escape sequence can reach the terminal. Tabs
// and newlines become spaces. The result is cut to maxTextRunes runes.
func Clean(s string) string {
	if isClean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	n := 0
	for i := 0; i < len(s) && n < maxTextRunes; n++ {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size <= 1:
			b.WriteByte('?')
		case r == '\t' || r == '\n':
			b.WriteByte(' ')
		case unsafeRune(r):
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isClean reports whether s needs no change (the common case: plain ASCII
// host names), so Clean can return it without allocating.
func isClean(s string) bool {
	if len(s) > maxTextRunes {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// unsafeRune reports whether r must not reach the terminal.
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f: // C0, DEL, C1
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069: // bidi embeddings, overrides, isolates
		return true
	case r == 0x200e || r == 0x200f || r == 0x061c: // bidi marks
		return true
	case r == 0xfeff, r >= 0xfff9 && r <= 0xfffb: // BOM, interlinear annotations
		return true
	}
	return false
}
