package tui

import (
	"fmt"
	"time"
)

// alertLines draws the alerts: firing first, then pending and recent ones,
// or why there are none.
func (m *Model) alertLines(v FleetView) []string {
	w := m.width
	state, why := v.AlertsState()
	switch state {
	case AlertsUnknown:
		return []string{"", fit("  asking the hub for alerts…", w)}
	case AlertsUnavailable:
		return []string{"", fitStyled(m.st.bold.Render("  No alerts to show."), w), fit("  "+why, w),
			fit("  Once the hub runs alert rules, firing and recent alerts appear here.", w)}
	}
	as := v.Alerts()
	firing := 0
	for _, a := range as {
		if a.State == "firing" {
			firing++
		}
	}
	lines := []string{fitStyled(m.st.bold.Render(fmt.Sprintf(" ALERTS  %d firing, %d in all", firing, len(as))), w)}
	rw := max(w-2-9-9-20-10-12-4-6, 8)
	lines = append(lines, m.st.header.Render(fit(fmt.Sprintf("  %-8s %-8s %s %s %9s %11s %s", "STATE", "SEVERITY", fit("MACHINE", 20), fit("RULE", rw), "VALUE", "SINCE", "ACK"), w)))
	if len(as) == 0 {
		return append(lines, fit("  no alerts", w))
	}
	h := m.height - 4
	m.alertCursor = max(min(m.alertCursor, len(as)-1), 0)
	start := max(m.alertCursor-h+1, 0)
	for i := start; i < len(as) && i < start+h; i++ {
		a := as[i]
		rule := a.Rule
		if rule == "" {
			rule = a.RuleID
		}
		ack := "no"
		if a.Acknowledged {
			ack = "yes"
		}
		since := "–"
		if !a.StartedAt.IsZero() {
			since = ago(m.opts.Now().Sub(a.StartedAt).Truncate(time.Second))
		}
		text := fmt.Sprintf("%-8s %-8s %s %s %9s %11s %s", fit(a.State, 8), fit(a.Severity, 8), fit(a.Machine, 20), fit(rule, rw), fmtNum(a.Value), since, ack)
		if i == m.alertCursor {
			lines = append(lines, m.st.selected.Render(fit("▶ "+text, w)))
			continue
		}
		st := &m.st.dim
		switch a.State {
		case "firing":
			st = &m.st.crit
		case "pending":
			st = &m.st.warn
		}
		lines = append(lines, paint(st, fit("  "+text, w)))
	}
	return lines
}
