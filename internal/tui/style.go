package tui

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/mattn/go-runewidth"
	"github.com/muesli/termenv"
)

// styles are the dashboard's text styles. Colours are adaptive (a light and
// a dark variant) so the dashboard reads on either background.
type styles struct {
	title, header, selected, dim, ok, warn, crit, bold style
}

// style is a lipgloss style that renders one line of text by wrapping it in
// the style's sequences, worked out once: Lip Gloss works them out for every
// call, which was most of the cost of a frame.
type style struct {
	lipgloss.Style
	pre, post string
	wraps     bool // pre + text + post is what Render gives for one line
}

func newStyle(st lipgloss.Style) style {
	s := style{Style: st}
	if pre, post, ok := strings.Cut(st.Render("X"), "X"); ok && !strings.Contains(post, "X") {
		s.pre, s.post, s.wraps = pre, post, true
	}
	return s
}

// Render renders text in the style.
func (s *style) Render(text string) string {
	if !s.wraps || text == "" || strings.ContainsAny(text, "\n\r\t") {
		return s.Style.Render(text)
	}
	return s.pre + text + s.post
}

func newStyles(r *lipgloss.Renderer) styles {
	if r == nil {
		r = lipgloss.NewRenderer(io.Discard)
		r.SetColorProfile(termenv.Ascii)
		r.SetHasDarkBackground(true)
	}
	c := func(light, dark string) lipgloss.TerminalColor {
		return lipgloss.AdaptiveColor{Light: light, Dark: dark}
	}
	return styles{
		title:    newStyle(r.NewStyle().Reverse(true).Bold(true)),
		header:   newStyle(r.NewStyle().Bold(true)),
		selected: newStyle(r.NewStyle().Reverse(true)),
		dim:      newStyle(r.NewStyle().Foreground(c("243", "245"))),
		ok:       newStyle(r.NewStyle().Foreground(c("28", "78"))),
		warn:     newStyle(r.NewStyle().Foreground(c("130", "220"))),
		crit:     newStyle(r.NewStyle().Foreground(c("160", "203")).Bold(true)),
		bold:     newStyle(r.NewStyle().Bold(true)),
	}
}

// NewRenderer returns the lipgloss renderer for a terminal on out: no
// colour when NO_COLOR is set (https://no-color.org) or out is not a
// terminal; the background is dark unless COLORFGBG says light. It never
// queries the terminal, so start-up does not wait on an answer.
func NewRenderer(out *os.File, getenv func(string) string) *lipgloss.Renderer {
	r := lipgloss.NewRenderer(out)
	profile := termenv.NewOutput(out, termenv.WithEnvironment(envFunc(getenv))).EnvColorProfile()
	if getenv("NO_COLOR") != "" {
		profile = termenv.Ascii
	}
	r.SetColorProfile(profile)
	dark := true
	if fgbg := getenv("COLORFGBG"); fgbg != "" {
		parts := strings.Split(fgbg, ";")
		switch parts[len(parts)-1] {
		case "7", "15", "11", "14":
			dark = false
		}
	}
	r.SetHasDarkBackground(dark)
	return r
}

type envFunc func(string) string

func (e envFunc) Environ() []string      { return nil }
func (e envFunc) Getenv(k string) string { return e(k) }

// level styles a percentage: warn from 75 %, crit from 90 %.
func (s *styles) level(pct float64) *style {
	switch {
	case math.IsNaN(pct):
		return &s.dim
	case pct >= 90:
		return &s.crit
	case pct >= 75:
		return &s.warn
	}
	return nil
}

// paint renders text in st; nil st leaves it plain.
func paint(st *style, text string) string {
	if st == nil || text == "" {
		return text
	}
	return st.Render(text)
}

// visibleWidth is the width in cells of s, style sequences not counted.
func visibleWidth(s string) int { return ansi.StringWidth(s) }

// truncateStyled cuts s (which may hold style sequences) to w cells.
func truncateStyled(s string, w int) string { return ansi.Truncate(s, w, "") }

const dash = "–"

// fit cuts s to w cells (with "…") and pads it on the right.
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	sw := cells(s)
	if sw > w {
		s = runewidth.Truncate(s, w, "…")
		sw = runewidth.StringWidth(s)
	}
	return s + strings.Repeat(" ", w-sw)
}

// cells is the width of s (plain text) in terminal cells. Most of what the
// dashboard draws is printable ASCII, one cell per byte: that is counted
// without the Unicode tables, which cost more than the rest of a frame.
func cells(s string) int {
	if s == dash {
		return 1
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return runewidth.StringWidth(s)
		}
	}
	return len(s)
}

// right pads s on the left to w cells.
func right(s string, w int) string {
	sw := cells(s)
	if sw >= w {
		return fit(s, w)
	}
	return strings.Repeat(" ", w-sw) + s
}

func fmtPct(v float64) string {
	if math.IsNaN(v) {
		return dash
	}
	return fmt.Sprintf("%.1f", v)
}

func fmtNum(v float64) string {
	switch {
	case math.IsNaN(v):
		return dash
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// fmtBytes formats a byte count (or bytes/s) with a binary unit.
func fmtBytes(v float64) string {
	if math.IsNaN(v) {
		return dash
	}
	const units = "KMGTPE"
	if v < 1024 {
		return fmt.Sprintf("%.0fB", v)
	}
	u := -1
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	if v < 10 {
		return fmt.Sprintf("%.1f%c", v, units[u])
	}
	return fmt.Sprintf("%.0f%c", v, units[u])
}

func fmtDuration(sec float64) string {
	if math.IsNaN(sec) || sec < 0 {
		return dash
	}
	s := int64(sec)
	d, h, m := s/86400, s/3600%24, s/60%60
	switch {
	case d > 0:
		return fmt.Sprintf("%dd %dh", d, h)
	case h > 0:
		return fmt.Sprintf("%dh %dm", h, m)
	}
	return fmt.Sprintf("%dm %ds", m, s%60)
}

// sparkline draws the last w values with block characters, scaled to
// [0, top] (top ≤ 0: the largest value shown). Unknown values are blank.
func sparkline(vals []float64, w int, top float64) string {
	const blocks = "▁▂▃▄▅▆▇█"
	if len(vals) > w {
		vals = vals[len(vals)-w:]
	}
	if top <= 0 {
		for _, v := range vals {
			if !math.IsNaN(v) && v > top {
				top = v
			}
		}
		if top <= 0 {
			top = 1
		}
	}
	var b strings.Builder
	b.Grow(w * 3)
	for i := len(vals); i < w; i++ {
		b.WriteByte(' ')
	}
	rs := []rune(blocks)
	for _, v := range vals {
		if math.IsNaN(v) {
			b.WriteByte(' ')
			continue
		}
		i := int(math.Round(min(max(v/top, 0), 1) * 7))
		b.WriteRune(rs[i])
	}
	return b.String()
}

// bar draws a usage bar of w cells for pct (0–100) with eighth blocks.
func bar(pct float64, w int) string {
	if math.IsNaN(pct) {
		return strings.Repeat(" ", w)
	}
	const parts = " ▏▎▍▌▋▊▉"
	eighths := int(math.Round(min(max(pct, 0), 100) / 100 * float64(w*8)))
	full, rest := eighths/8, eighths%8
	var b strings.Builder
	b.WriteString(strings.Repeat("█", full))
	if full < w {
		b.WriteRune([]rune(parts)[rest])
		b.WriteString(strings.Repeat(" ", w-full-1))
	}
	return b.String()
}
