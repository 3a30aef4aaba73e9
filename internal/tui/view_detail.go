package tui

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// detailLines draws the selected machine: charts for CPU (total and per
// core), memory, network and disks; filesystems with usage bars; services,
// SMART and temperatures when the agent reports them; top processes when
// the hub has them; host information. The body scrolls.
func (m *Model) detailLines(v FleetView) []string {
	mc := v.Machine(m.selected)
	if mc == nil {
		return []string{"", fit("  machine "+Clean(m.selected)+" is gone (Esc goes back)", m.width)}
	}
	w := m.width
	var out []string
	add := func(s string) { out = append(out, fitStyled(s, w)) }
	section := func(s string) { add(m.st.header.Render(s)) }

	status := m.st.ok.Render("up")
	if mc.Known && !mc.Online {
		status = m.st.crit.Render("down")
	}
	head := " " + m.st.bold.Render(mc.ID)
	if mc.Hostname != "" && mc.Hostname != mc.ID {
		head += " (" + mc.Hostname + ")"
	}
	head += "  " + status
	if !mc.LastSeen.IsZero() {
		head += m.st.dim.Render("  last seen " + ago(m.opts.Now().Sub(mc.LastSeen)) + " ago")
	}
	add(head)
	add(" " + m.hostLine(mc))
	if mc.Labels != "" {
		add(m.st.dim.Render(" labels: ") + mc.Labels)
	}

	// CPU.
	tail := fmt.Sprintf("load %s %s %s  procs %s", fmtNum(mc.Load1), fmtNum(mc.Load5), fmtNum(mc.Load15), fmtCount(mc.Procs))
	sw := max(w-6-6-2-2-len(tail)-1, 8)
	add(" CPU " + paint(m.st.level(mc.CPU), right(fmtPct(mc.CPU)+"%", 7)) + "  " + sparkline(mc.CPUHist(), sw, 100) + "  " + tail)
	if n := len(mc.Cores); n > 0 {
		const cw = 6
		cell := cw + 11
		perRow := max((w-2)/cell, 1)
		for i := 0; i < n; i += perRow {
			var b strings.Builder
			b.WriteString(" ")
			for j := i; j < min(i+perRow, n); j++ {
				c := mc.Cores[j]
				b.WriteString(fmt.Sprintf(" %3d %s ", j, sparkline(mc.CoreHist(j), cw, 100)))
				b.WriteString(paint(m.st.level(c), right(fmtPct(c), 5)))
			}
			add(b.String())
		}
	}

	// Memory.
	memTail := fmt.Sprintf("%s / %s  swap %s / %s", fmtBytes(mc.MemUsed), fmtBytes(mc.MemTotal), fmtBytes(mc.SwapUsed), fmtBytes(mc.SwapTotal))
	sw = max(w-6-6-2-2-len(memTail)-1, 8)
	add(" MEM " + paint(m.st.level(mc.MemPct), right(fmtPct(mc.MemPct)+"%", 7)) + "  " + sparkline(mc.MemHist(), sw, 100) + "  " + memTail)

	// Network.
	if len(mc.NICs) > 0 {
		half := max((w-38)/2, 6)
		add(fmt.Sprintf(" NET  in %7s/s %s  out %7s/s %s", fmtBytes(mc.NetRx()), sparkline(mc.RxHist(), half, 0), fmtBytes(mc.NetTx()), sparkline(mc.TxHist(), half, 0)))
		var b strings.Builder
		for _, n := range mc.NICs {
			fmt.Fprintf(&b, "  %s ↓%s ↑%s", n.Name, fmtBytes(n.A), fmtBytes(n.B))
		}
		add(m.st.dim.Render("     " + b.String()))
	}
	// Disk I/O.
	if len(mc.Disks) > 0 {
		var b strings.Builder
		for _, d := range mc.Disks {
			fmt.Fprintf(&b, "  %s r %s/s w %s/s", d.Name, fmtBytes(d.A), fmtBytes(d.B))
		}
		add(" DISK" + b.String())
	}

	// Filesystems.
	if len(mc.FS) > 0 {
		add("")
		section(" FILESYSTEMS")
		mw := min(max(w/5, 10), 30)
		bw := max(min(w-mw-46, 30), 6)
		for _, f := range mc.FS {
			add(fmt.Sprintf("  %s ▕%s▏ %s %7s/%-7s %s %s", fit(f.Mount, mw), paint(m.st.level(f.Pct), bar(f.Pct, bw)),
				paint(m.st.level(f.Pct), right(fmtPct(f.Pct)+"%", 6)), fmtBytes(f.Used), fmtBytes(f.Size), f.FSType, m.st.dim.Render(f.Device)))
		}
	}

	// Deep collectors: shown only when the agent reports them.
	for _, kind := range []struct{ kind, title string }{{"service", " SERVICES"}, {"smart", " SMART"}, {"temperature", " TEMPERATURES"}} {
		var items []string
		for _, e := range mc.Extras {
			if e.Kind != kind.kind {
				continue
			}
			switch kind.kind {
			case "service":
				mark := m.st.ok.Render("ok")
				if !(e.Value > 0) {
					mark = m.st.crit.Render("FAILED")
				}
				items = append(items, e.Name+" "+mark)
			case "temperature":
				items = append(items, fmt.Sprintf("%s %.0f°C", e.Name, e.Value))
			default:
				items = append(items, fmt.Sprintf("%s %s %s", e.Name, strings.TrimPrefix(strings.TrimPrefix(e.Metric, "smart_"), "nvme_"), fmtNum(e.Value)))
			}
		}
		if len(items) == 0 {
			continue
		}
		add("")
		title := kind.title
		if kind.kind == "service" {
			ok, total := mc.extraServices()
			title += fmt.Sprintf(" %d/%d ok", ok, total)
		}
		section(title)
		out = append(out, wrapItems(items, w)...)
	}

	// Top processes, when the hub has them.
	if len(mc.Processes) > 0 {
		add("")
		section(" TOP PROCESSES")
		add(m.st.dim.Render(fmt.Sprintf("  %7s %-10s %6s %8s  %s", "PID", "USER", "CPU%", "MEM", "COMMAND")))
		for _, p := range mc.Processes {
			cmd := p.Command
			if cmd == "" {
				cmd = p.Name
			}
			add(fmt.Sprintf("  %7d %s %6.1f %8s  %s", p.PID, fit(p.User, 10), p.CPU, fmtBytes(p.Mem), cmd))
		}
	}

	// Scroll.
	h := m.height - 2
	m.scroll = max(min(m.scroll, len(out)-h), 0)
	return out[m.scroll:]
}

// hostLine: OS, kernel, architecture, CPU, memory, uptime, agent.
func (m *Model) hostLine(mc *Machine) string {
	in := mc.Info
	var parts []string
	if in.Platform != "" {
		parts = append(parts, in.Platform)
	} else if in.OS != "" {
		parts = append(parts, in.OS)
	}
	if in.Kernel != "" {
		parts = append(parts, "kernel "+in.Kernel)
	}
	if in.Arch != "" {
		parts = append(parts, in.Arch)
	}
	if in.CPUModel != "" || in.CPUThreads > 0 {
		parts = append(parts, strings.TrimSpace(fmt.Sprintf("%s %d/%d cores", in.CPUModel, in.CPUCores, in.CPUThreads)))
	}
	if in.MemoryTotal > 0 {
		parts = append(parts, fmtBytes(float64(in.MemoryTotal))+" RAM")
	}
	if !math.IsNaN(mc.Uptime) {
		parts = append(parts, "up "+fmtDuration(mc.Uptime))
	}
	if in.AgentVersion != "" {
		parts = append(parts, "agent "+in.AgentVersion)
	}
	if len(parts) == 0 {
		return m.st.dim.Render("no host information")
	}
	return strings.Join(parts, " · ")
}

// wrapItems lays items out in lines of at most w cells.
func wrapItems(items []string, w int) []string {
	var out []string
	line, lw := " ", 1
	for _, it := range items {
		iw := visibleWidth(it) + 3
		if lw+iw > w && lw > 1 {
			out = append(out, fitStyled(line, w))
			line, lw = " ", 1
		}
		line += "  " + it + " "
		lw += iw
	}
	if lw > 1 {
		out = append(out, fitStyled(line, w))
	}
	return out
}

func fmtCount(v float64) string {
	if math.IsNaN(v) {
		return dash
	}
	return fmt.Sprintf("%.0f", v)
}

// ago formats a short elapsed time.
func ago(d time.Duration) string {
	switch {
	case d < time.Second:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	}
	return fmtDuration(d.Seconds())
}
