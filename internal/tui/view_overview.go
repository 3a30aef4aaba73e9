package tui

import (
	"fmt"
	"math"
	"strings"
)

// Fixed overview column widths (cells); the name column takes the rest.
const (
	wStatus = 4
	wPct    = 5
	wLoad   = 5
	wRate   = 7
	wSvc    = 5
	wAlerts = 3
	wUptime = 8
)

// overviewCols is the layout of one overview row at the model's width.
type overviewCols struct {
	name   int
	uptime bool
}

func (m *Model) overviewLayout() overviewCols {
	fixed := 2 + (1 + wStatus) + 3*(1+wPct) + (1 + wLoad) + 2*(1+wRate) + (1 + wSvc) + (1 + wAlerts)
	c := overviewCols{name: m.width - fixed}
	if m.width >= 110 {
		c.uptime = true
		c.name -= 1 + wUptime
	}
	if c.name > 40 {
		c.name = 40
	}
	return c
}

func (m *Model) overviewLines(v FleetView) []string {
	c := m.overviewLayout()
	lines := make([]string, 0, m.listHeight()+1)
	lines = append(lines, m.headerRow(c))
	if len(m.order) == 0 {
		msg := "  no machines yet"
		if m.filter != "" {
			msg = "  no machine matches \"" + m.filter + "\""
		} else if !v.Conn().Connected {
			msg = "  waiting for the hub…"
		}
		return append(lines, m.st.dim.Render(fit(msg, m.width)))
	}
	end := min(m.offset+m.listHeight(), len(m.order))
	for i := m.offset; i < end; i++ {
		lines = append(lines, m.row(c, m.order[i], i == m.cursor))
	}
	return lines
}

func (m *Model) headerRow(c overviewCols) string {
	h := func(col column, label string, w int, alignRight bool) string {
		if m.sortCol == col {
			arrow := "↓"
			if m.reverse != (col == colName) {
				arrow = "↑"
			}
			label += arrow
		}
		if alignRight {
			return right(label, w)
		}
		return fit(label, w)
	}
	var b strings.Builder
	b.WriteString("  ")
	b.WriteString(h(colName, "MACHINE", c.name, false))
	b.WriteString(" " + h(colStatus, "ST", wStatus, false))
	b.WriteString(" " + h(colCPU, "CPU%", wPct, true))
	b.WriteString(" " + h(colMem, "MEM%", wPct, true))
	b.WriteString(" " + h(colDisk, "DSK%", wPct, true))
	b.WriteString(" " + h(colLoad, "LOAD", wLoad, true))
	b.WriteString(" " + h(colNetIn, "NET IN", wRate, true))
	b.WriteString(" " + h(colNetOut, "NETOUT", wRate, true))
	b.WriteString(" " + h(colServices, "SVC", wSvc, true))
	b.WriteString(" " + h(colAlerts, "ALR", wAlerts, true))
	if c.uptime {
		b.WriteString(" " + right("UPTIME", wUptime))
	}
	return m.st.header.Render(fit(b.String(), m.width))
}

// row draws one machine. The selected row is drawn reversed without the
// threshold colours (and marked with ▶ for terminals without styles).
func (m *Model) row(c overviewCols, mc *Machine, selected bool) string {
	type cell struct {
		text string
		st   *style // nil: plain
	}
	status, stStyle := "up", &m.st.ok
	if mc.Known && !mc.Online {
		status, stStyle = "down", &m.st.crit
	}
	svc, svcStyle := dash, &m.st.dim
	if ok, total := mc.Services(); total > 0 {
		svc, svcStyle = fmt.Sprintf("%d/%d", ok, total), nil
		if ok < total {
			svcStyle = &m.st.crit
		}
	}
	alr, alrStyle := dash, &m.st.dim
	if mc.FiringAlerts >= 0 {
		alr, alrStyle = fmt.Sprint(mc.FiringAlerts), nil
		if mc.FiringAlerts > 0 {
			alrStyle = &m.st.crit
		}
	}
	loadStyle := &m.st.dim
	if !math.IsNaN(mc.Load1) {
		loadStyle = nil
		if t := float64(mc.Info.CPUThreads); t > 0 {
			loadStyle = m.st.level(mc.Load1 / t * 75) // 1× threads: warn, 1.2×: crit
		}
	}
	name := mc.ID
	if mc.Hostname != "" && mc.Hostname != mc.ID && c.name >= 30 {
		name += " (" + mc.Hostname + ")"
	}
	disk := mc.DiskPct()
	cells := []cell{
		{fit(name, c.name), nil},
		{fit(status, wStatus), stStyle},
		{right(fmtPct(mc.CPU), wPct), m.st.level(mc.CPU)},
		{right(fmtPct(mc.MemPct), wPct), m.st.level(mc.MemPct)},
		{right(fmtPct(disk), wPct), m.st.level(disk)},
		{right(fmtNum(mc.Load1), wLoad), loadStyle},
		{right(fmtBytes(mc.NetRx()), wRate), nil},
		{right(fmtBytes(mc.NetTx()), wRate), nil},
		{right(svc, wSvc), svcStyle},
		{right(alr, wAlerts), alrStyle},
	}
	if c.uptime {
		cells = append(cells, cell{right(fmtDuration(mc.Uptime), wUptime), nil})
	}
	var b strings.Builder
	if selected {
		b.WriteString("▶ ")
		for i, cl := range cells {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(cl.text)
		}
		return m.st.selected.Render(fit(b.String(), m.width))
	}
	b.WriteString("  ")
	width := 2
	for i, cl := range cells {
		if i > 0 {
			b.WriteByte(' ')
			width++
		}
		b.WriteString(paint(cl.st, cl.text))
		width += visibleWidth(cl.text)
	}
	if width < m.width {
		b.WriteString(strings.Repeat(" ", m.width-width))
	}
	return b.String()
}
