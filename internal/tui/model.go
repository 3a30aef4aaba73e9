package tui

import (
	"context"
	"math"
	"sort"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
)

// Options configure the dashboard model.
type Options struct {
	Fleet  *Fleet
	Source string // shown in the title, e.g. "hub http://127.0.0.1:8000" or "local"
	// Ack acknowledges an alert; nil when acknowledging is impossible
	// (--local).
	Ack func(ctx context.Context, id string) error
	// Processes fetches a machine's top-process list; nil when the source
	// has none.
	Processes func(ctx context.Context, id string) ([]Process, error)
	Renderer  *lipgloss.Renderer // nil: plain text, no colour
	Now       func() time.Time   // nil: time.Now
	Detail    string             // open this machine's detail view at start
}

type viewKind int

const (
	viewOverview viewKind = iota
	viewDetail
	viewAlerts
)

// column is a sortable overview column.
type column int

const (
	colName column = iota
	colCPU
	colMem
	colDisk
	colLoad
	colNetIn
	colNetOut
	colServices
	colAlerts
	colStatus
	numColumns
)

func (c column) String() string {
	switch c {
	case colName:
		return "name"
	case colCPU:
		return "cpu"
	case colMem:
		return "mem"
	case colDisk:
		return "disk"
	case colLoad:
		return "load"
	case colNetIn:
		return "net in"
	case colNetOut:
		return "net out"
	case colServices:
		return "services"
	case colAlerts:
		return "alerts"
	case colStatus:
		return "status"
	}
	return "?"
}

// Messages the model handles besides keys and sizes.
type (
	refreshMsg struct{} // the fleet changed (coalesced)
	ackDoneMsg struct {
		id  string
		err error
	}
	procsMsg struct {
		id  string
		ps  []Process
		err error
	}
	procsTickMsg struct{ id string }
)

// Model is the bubbletea model of `sysmonstm top`.
type Model struct {
	opts  Options
	fleet *Fleet
	st    styles

	width, height int
	view, back    viewKind // back: where Esc leaves the alerts view to
	help          bool

	order     []*Machine // overview rows: filtered and sorted (read under the fleet lock)
	total     int        // machines before filtering
	online    int
	cursor    int
	offset    int    // first overview row shown
	selected  string // id (as sent) of the machine under the cursor / in detail
	sortCol   column
	reverse   bool
	filter    string
	filtering bool

	scroll      int  // detail view
	shown       bool // the detail view's machine was in the fleet at the last refresh (see leaveGone)
	alertCursor int
	status      string
	statusUntil time.Time
}

// New returns the model.
func New(opts Options) *Model {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := &Model{opts: opts, fleet: opts.Fleet, st: newStyles(opts.Renderer)}
	if opts.Detail != "" {
		m.view, m.selected = viewDetail, opts.Detail
		m.fleet.SetFocus(opts.Detail)
	}
	m.refresh()
	return m
}

// Init starts the process-list polling when the model opens in detail.
func (m *Model) Init() tea.Cmd {
	if m.view == viewDetail {
		return m.fetchProcs(m.selected)
	}
	return nil
}

// refresh rebuilds the overview rows from the fleet.
func (m *Model) refresh() {
	gone := false
	m.fleet.Read(func(v FleetView) {
		if m.inDetail() {
			present := v.Machine(m.selected) != nil
			gone = m.shown && !present
			m.shown = present
		}
		all := v.Machines()
		m.total, m.online = len(all), 0
		m.order = m.order[:0]
		q := strings.ToLower(m.filter)
		for _, mc := range all {
			if mc.Online || !mc.Known {
				m.online++
			}
			if q == "" || matches(mc, q) {
				m.order = append(m.order, mc)
			}
		}
		m.sortRows()
	})
	if gone {
		m.leaveGone()
	}
	m.placeCursor()
}

// inDetail reports whether the detail view is open, or under the alerts
// view.
func (m *Model) inDetail() bool {
	return m.view == viewDetail || m.view == viewAlerts && m.back == viewDetail
}

// leaveGone goes back to the overview from the detail of a machine that
// left the fleet (the hub forgot it), and says why, rather than leave an
// empty page open.
func (m *Model) leaveGone() {
	if m.view == viewAlerts {
		m.back = viewOverview
	} else {
		m.view = viewOverview
	}
	m.shown = false
	m.fleet.SetFocus("")
	m.setStatus("machine " + Clean(m.selected) + " was forgotten by the hub")
}

func matches(mc *Machine, q string) bool {
	for _, s := range [...]string{mc.ID, mc.Hostname, mc.Labels, mc.Info.Platform} {
		if strings.Contains(strings.ToLower(s), q) {
			return true
		}
	}
	return false
}

// sortRows orders m.order by the sort column. Numbers sort largest first
// (the busiest machine on top), names A→Z; r reverses. Unknown values go
// last either way; ties fall back to the id. Caller holds the fleet lock.
func (m *Model) sortRows() {
	col, rev := m.sortCol, m.reverse
	key := func(mc *Machine) float64 {
		switch col {
		case colCPU:
			return mc.CPU
		case colMem:
			return mc.MemPct
		case colDisk:
			return mc.DiskPct()
		case colLoad:
			return mc.Load1
		case colNetIn:
			return mc.NetRx()
		case colNetOut:
			return mc.NetTx()
		case colServices:
			ok, total := mc.Services()
			if total == 0 {
				return math.NaN()
			}
			return float64(total - ok) // failing services first
		case colAlerts:
			if mc.FiringAlerts < 0 {
				return math.NaN()
			}
			return float64(mc.FiringAlerts)
		case colStatus:
			if mc.Online || !mc.Known {
				return 0
			}
			return 1 // offline first
		}
		return 0
	}
	sort.SliceStable(m.order, func(i, j int) bool {
		a, b := m.order[i], m.order[j]
		if col != colName {
			ka, kb := key(a), key(b)
			na, nb := math.IsNaN(ka), math.IsNaN(kb)
			switch {
			case na && !nb:
				return false
			case nb && !na:
				return true
			case !na && ka != kb:
				return (ka > kb) != rev
			}
			return a.ID < b.ID
		}
		if a.ID != b.ID {
			return (a.ID < b.ID) != rev
		}
		return false
	})
}

// placeCursor keeps the cursor on the selected machine after a re-sort.
func (m *Model) placeCursor() {
	if m.view == viewDetail {
		return
	}
	if m.selected != "" {
		for i, mc := range m.order {
			if mc.key == m.selected {
				m.cursor = i
				m.clampOffset()
				return
			}
		}
	}
	m.cursor = min(m.cursor, max(len(m.order)-1, 0))
	if m.cursor < len(m.order) {
		m.selected = m.order[m.cursor].key
	} else {
		m.selected = ""
	}
	m.clampOffset()
}

// listHeight is the number of overview rows that fit.
func (m *Model) listHeight() int { return max(m.height-3, 1) }

func (m *Model) clampOffset() {
	h := m.listHeight()
	if m.cursor < m.offset {
		m.offset = m.cursor
	}
	if m.cursor >= m.offset+h {
		m.offset = m.cursor - h + 1
	}
	m.offset = max(min(m.offset, len(m.order)-h), 0)
}

func (m *Model) moveCursor(d int) {
	if len(m.order) == 0 {
		return
	}
	m.cursor = max(min(m.cursor+d, len(m.order)-1), 0)
	m.selected = m.order[m.cursor].key
	m.clampOffset()
}

func (m *Model) setStatus(s string) {
	m.status, m.statusUntil = s, m.opts.Now().Add(5*time.Second)
}

// selectedAlert returns the alert under the alerts cursor, or nil. Caller
// holds the fleet lock.
func (m *Model) selectedAlert(v FleetView) *Alert {
	as := v.Alerts()
	if m.alertCursor < 0 || m.alertCursor >= len(as) {
		return nil
	}
	return as[m.alertCursor]
}
