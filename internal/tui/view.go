package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/mattn/go-runewidth"
)

// Smallest terminal the dashboard draws in.
const minWidth, minHeight = 60, 10

// View draws the current screen: a title line, the body and a footer line,
// exactly width × height cells.
func (m *Model) View() string {
	if m.width == 0 || m.height == 0 {
		return ""
	}
	if m.width < minWidth || m.height < minHeight {
		return fit(fmt.Sprintf("terminal too small: %d×%d, need %d×%d", m.width, m.height, minWidth, minHeight), m.width)
	}
	var body []string
	var title, footer string
	m.fleet.Read(func(v FleetView) {
		title = m.titleLine(v)
		switch {
		case m.help:
			body = m.helpLines()
		case m.view == viewDetail:
			body = m.detailLines(v)
		case m.view == viewAlerts:
			body = m.alertLines(v)
		default:
			body = m.overviewLines(v)
		}
		footer = m.footerLine()
	})
	h := m.height - 2
	if len(body) > h {
		body = body[:h]
	}
	var b strings.Builder
	b.Grow((m.height + 1) * (m.width + 16))
	b.WriteString(title)
	for _, l := range body {
		b.WriteByte('\n')
		b.WriteString(l)
	}
	for i := len(body); i < h; i++ {
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(footer)
	return b.String()
}

// titleLine: product, source, fleet size, connection state, sort order.
func (m *Model) titleLine(v FleetView) string {
	conn := v.Conn()
	parts := []string{"sysmonstm top", m.opts.Source}
	parts = append(parts, fmt.Sprintf("%d machines, %d up", m.total, m.online))
	left := " " + strings.Join(parts, " │ ") + " "
	var state string
	switch {
	case conn.Connected:
	case conn.Err != "":
		wait := max(conn.RetryAt.Sub(m.opts.Now()).Round(time.Second), 0)
		state = fmt.Sprintf(" disconnected, retrying in %s: %s ", wait, conn.Err)
	default:
		state = " connecting… "
	}
	if state == "" {
		return m.st.title.Render(fit(left, m.width))
	}
	lw := min(runewidth.StringWidth(left), m.width/2)
	return m.st.title.Render(fit(left, lw)) + m.st.crit.Render(fit(state, m.width-lw))
}

// footerLine: the filter being typed, a status message, or key hints.
func (m *Model) footerLine() string {
	if m.filtering {
		return fit("/"+m.filter+"█  (Enter keeps, Esc clears)", m.width)
	}
	if m.status != "" {
		return m.st.bold.Render(fit(" "+m.status, m.width))
	}
	var hints string
	switch {
	case m.help:
		hints = "any key closes help"
	case m.view == viewDetail:
		hints = "Esc back  ↑↓ scroll  a alerts  ? help  q quit"
	case m.view == viewAlerts:
		hints = "Esc back  ↑↓ move  k acknowledge  ? help  q quit"
	default:
		hints = "↑↓ move  Enter open  s sort  r reverse  / filter  a alerts  ? help  q quit"
		if m.filter != "" {
			hints = "filter \"" + m.filter + "\" (Esc clears)  " + hints
		}
	}
	return m.st.dim.Render(fit(" "+hints, m.width))
}

func (m *Model) helpLines() []string {
	lines := []string{
		"",
		m.st.bold.Render("  Keys"),
		"",
		"  Overview   ↑/k ↓/j move   PgUp/PgDn page   g/G first/last",
		"             Enter  open the machine's detail",
		"             s      sort by the next column (numbers: largest first)",
		"             r      reverse the sort",
		"             /      filter by id, hostname, labels or OS; Esc clears",
		"  Detail     ↑↓ scroll   Esc back to the overview",
		"  Alerts     a      open the alerts (firing first)",
		"             ↑↓ move   k acknowledge (needs a role that may)",
		"  Anywhere   ?      this help        q / Ctrl-C  quit",
		"",
		m.st.dim.Render("  Colours: yellow from 75 %, red from 90 %; – means no data."),
		m.st.dim.Render("  Set NO_COLOR=1 for plain text. Logs go to --log-file."),
	}
	for i := range lines {
		lines[i] = fitStyled(lines[i], m.width)
	}
	return lines
}

// fitStyled pads or cuts a line that may hold style sequences to w cells.
func fitStyled(s string, w int) string {
	sw := visibleWidth(s)
	if sw > w {
		return truncateStyled(s, w)
	}
	return s + strings.Repeat(" ", w-sw)
}
