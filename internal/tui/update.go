package tui

import (
	"context"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// Update handles one message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.clampOffset()
	case refreshMsg:
		m.refresh()
		if m.status != "" && m.opts.Now().After(m.statusUntil) {
			m.status = ""
		}
	case tea.KeyMsg:
		if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !m.filtering && !msg.Paste {
			// Keys typed faster than one read arrive together: one at a time.
			var cmds []tea.Cmd
			for _, r := range msg.Runes {
				k := tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}, Alt: msg.Alt}
				if cmd := m.key(k); cmd != nil {
					cmds = append(cmds, cmd)
				}
			}
			return m, tea.Batch(cmds...)
		}
		return m, m.key(msg)
	case ackDoneMsg:
		if msg.err != nil {
			m.setStatus("ack failed: " + Clean(msg.err.Error()))
			return m, nil
		}
		m.fleet.Update(func(FleetWriter) {
			for _, a := range m.fleet.alerts {
				if a.ID == msg.id {
					a.Acknowledged = true
				}
			}
		})
		m.setStatus("acknowledged alert " + Clean(msg.id))
	case procsMsg:
		if msg.err == nil {
			m.fleet.Update(func(w FleetWriter) {
				if mc := m.fleet.byID[msg.id]; mc != nil {
					mc.SetProcesses(msg.ps)
				}
			})
		}
		if m.view == viewDetail && m.selected == msg.id {
			id := msg.id
			return m, tea.Tick(2*time.Second, func(time.Time) tea.Msg { return procsTickMsg{id} })
		}
	case procsTickMsg:
		if m.view == viewDetail && m.selected == msg.id {
			return m, m.fetchProcs(msg.id)
		}
	}
	return m, nil
}

// key handles one key press.
func (m *Model) key(k tea.KeyMsg) tea.Cmd {
	s := k.String()
	if s == "ctrl+c" {
		return tea.Quit
	}
	if m.filtering {
		m.filterKey(k)
		return nil
	}
	if m.help {
		switch s {
		case "q":
			return tea.Quit
		default:
			m.help = false
		}
		return nil
	}
	switch s {
	case "q":
		return tea.Quit
	case "?":
		m.help = true
		return nil
	}
	switch m.view {
	case viewOverview:
		return m.overviewKey(s)
	case viewDetail:
		return m.detailKey(s)
	case viewAlerts:
		return m.alertsKey(s)
	}
	return nil
}

func (m *Model) filterKey(k tea.KeyMsg) {
	switch k.Type {
	case tea.KeyEnter:
		m.filtering = false
	case tea.KeyEsc:
		m.filtering, m.filter = false, ""
	case tea.KeyBackspace:
		if r := []rune(m.filter); len(r) > 0 {
			m.filter = string(r[:len(r)-1])
		}
	case tea.KeyRunes, tea.KeySpace:
		if len(m.filter) < 64 {
			m.filter += Clean(string(k.Runes))
		}
	default:
		return
	}
	m.cursor, m.offset, m.selected = 0, 0, ""
	m.refresh()
}

func (m *Model) overviewKey(s string) tea.Cmd {
	switch s {
	case "up", "k":
		m.moveCursor(-1)
	case "down", "j":
		m.moveCursor(1)
	case "pgup":
		m.moveCursor(-m.listHeight())
	case "pgdown", " ":
		m.moveCursor(m.listHeight())
	case "home", "g":
		m.moveCursor(-len(m.order))
	case "end", "G":
		m.moveCursor(len(m.order))
	case "s":
		m.sortCol = (m.sortCol + 1) % numColumns
		m.reverse = false
		m.toTop()
	case "r":
		m.reverse = !m.reverse
		m.toTop()
	case "/":
		m.filtering = true
	case "esc":
		if m.filter != "" {
			m.filter = ""
			m.refresh()
		}
	case "enter":
		if m.selected != "" {
			m.view, m.scroll, m.shown = viewDetail, 0, true
			m.fleet.SetFocus(m.selected) // full metrics for this machine only
			return m.fetchProcs(m.selected)
		}
	case "a":
		m.back, m.view, m.alertCursor = viewOverview, viewAlerts, 0
	}
	return nil
}

// toTop re-sorts and puts the cursor on the first row: after `s` the
// busiest machine is under the cursor, one Enter away.
func (m *Model) toTop() {
	m.cursor, m.offset, m.selected = 0, 0, ""
	m.refresh()
}

func (m *Model) detailKey(s string) tea.Cmd {
	switch s {
	case "esc", "backspace", "left", "h":
		m.view = viewOverview
		m.fleet.SetFocus("") // back to summaries only
		m.refresh()
	case "up", "k":
		m.scroll = max(m.scroll-1, 0)
	case "down", "j":
		m.scroll++
	case "pgup":
		m.scroll = max(m.scroll-(m.height-2), 0)
	case "pgdown", " ":
		m.scroll += m.height - 2
	case "home", "g":
		m.scroll = 0
	case "a":
		m.back, m.view, m.alertCursor = viewDetail, viewAlerts, 0
	}
	return nil
}

func (m *Model) alertsKey(s string) tea.Cmd {
	switch s {
	case "esc", "backspace", "a":
		m.view = m.back
		m.refresh()
	case "up":
		m.alertCursor = max(m.alertCursor-1, 0)
	case "down", "j":
		n := 0
		m.fleet.Read(func(v FleetView) { n = len(v.Alerts()) })
		m.alertCursor = max(min(m.alertCursor+1, n-1), 0)
	case "k":
		return m.ackSelected()
	}
	return nil
}

// ackSelected acknowledges the alert under the cursor.
func (m *Model) ackSelected() tea.Cmd {
	var id string
	var acked bool
	m.fleet.Read(func(v FleetView) {
		if a := m.selectedAlert(v); a != nil {
			id, acked = a.ID, a.Acknowledged
		}
	})
	switch {
	case id == "":
		m.setStatus("no alert selected")
		return nil
	case m.opts.Ack == nil:
		m.setStatus("acknowledging needs a hub")
		return nil
	case acked:
		m.setStatus("alert " + id + " is already acknowledged")
		return nil
	}
	m.setStatus("acknowledging " + id + "…")
	ack := m.opts.Ack
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return ackDoneMsg{id: id, err: ack(ctx, id)}
	}
}

// fetchProcs loads machine id's process list, if the source has them.
func (m *Model) fetchProcs(id string) tea.Cmd {
	get := m.opts.Processes
	if get == nil {
		return nil
	}
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ps, err := get(ctx, id)
		return procsMsg{id: id, ps: ps, err: err}
	}
}
