package tui

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"
)

func newTestModel(t *testing.T, f *Fleet, w, h int) *Model {
	t.Helper()
	m := New(Options{Fleet: f, Source: "hub http://hub.test:8000", Now: func() time.Time { return fixedNow }})
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	return m
}

func press(m *Model, keys ...string) tea.Cmd {
	var cmd tea.Cmd
	for _, k := range keys {
		var msg tea.KeyMsg
		switch k {
		case "enter":
			msg = tea.KeyMsg{Type: tea.KeyEnter}
		case "esc":
			msg = tea.KeyMsg{Type: tea.KeyEsc}
		case "up":
			msg = tea.KeyMsg{Type: tea.KeyUp}
		case "down":
			msg = tea.KeyMsg{Type: tea.KeyDown}
		case "backspace":
			msg = tea.KeyMsg{Type: tea.KeyBackspace}
		case "ctrl+c":
			msg = tea.KeyMsg{Type: tea.KeyCtrlC}
		default:
			msg = tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
		}
		_, cmd = m.Update(msg)
	}
	return cmd
}

func ids(m *Model) []string {
	var out []string
	for _, mc := range m.order {
		out = append(out, mc.ID)
	}
	return out
}

func TestNavigation(t *testing.T) {
	m := newTestModel(t, fixtureFleet(30), 80, 24)
	if m.selected != "db-01" && m.order[0].ID != m.selected {
		t.Fatalf("selected %q, first row %q", m.selected, m.order[0].ID)
	}
	press(m, "down", "down", "j")
	if m.cursor != 3 || m.selected != m.order[3].key {
		t.Fatalf("cursor %d selected %q", m.cursor, m.selected)
	}
	press(m, "up")
	want := m.order[2].key
	press(m, "enter")
	if m.view != viewDetail || m.selected != want {
		t.Fatalf("enter: view %d selected %q, want detail of %q", m.view, m.selected, want)
	}
	if !strings.Contains(m.View(), want) {
		t.Fatalf("detail does not show %s", want)
	}
	press(m, "esc")
	if m.view != viewOverview || m.cursor != 2 {
		t.Fatalf("esc: view %d cursor %d", m.view, m.cursor)
	}
	press(m, "G")
	if m.cursor != 29 || m.offset != 30-m.listHeight() {
		t.Fatalf("G: cursor %d offset %d", m.cursor, m.offset)
	}
	press(m, "g")
	if m.cursor != 0 || m.offset != 0 {
		t.Fatalf("g: cursor %d offset %d", m.cursor, m.offset)
	}
	press(m, "?")
	if !m.help || !strings.Contains(m.View(), "Keys") {
		t.Fatal("? shows no help")
	}
	press(m, "x")
	if m.help {
		t.Fatal("help stays open")
	}
	if cmd := press(m, "q"); cmd == nil || cmd() != tea.Quit() {
		t.Fatal("q does not quit")
	}
	if cmd := press(m, "ctrl+c"); cmd == nil || cmd() != tea.Quit() {
		t.Fatal("ctrl+c does not quit")
	}
}

func TestSortBusiestInTwoKeys(t *testing.T) {
	f := fixtureFleet(30)
	m := newTestModel(t, f, 80, 24)
	press(m, "down", "down") // the cursor goes back to the top on a new sort
	press(m, "s")
	if m.sortCol != colCPU {
		t.Fatalf("s: sort column %s, want cpu", m.sortCol)
	}
	var busiest *Machine
	f.Read(func(v FleetView) {
		for _, mc := range v.Machines() {
			if busiest == nil || mc.CPU > busiest.CPU {
				busiest = mc
			}
		}
	})
	press(m, "enter")
	if m.view != viewDetail || m.selected != busiest.key {
		t.Fatalf("s, Enter opened %q, busiest is %q (%.1f%%)", m.selected, busiest.ID, busiest.CPU)
	}
	press(m, "esc", "r")
	if last := m.order[len(m.order)-1]; last != busiest {
		t.Fatalf("r: last row %s, want %s", last.ID, busiest.ID)
	}
	for i := 1; i < len(m.order); i++ {
		if m.order[i-1].CPU > m.order[i].CPU {
			t.Fatalf("reversed cpu sort out of order at %d: %v", i, ids(m))
		}
	}
	// Cycling comes back to the name column.
	for range numColumns - 1 {
		press(m, "s")
	}
	if m.sortCol != colName || m.order[0].ID != "db-01" {
		t.Fatalf("after a full cycle: column %s first %s", m.sortCol, m.order[0].ID)
	}
	// Live updates keep the cursor on the same machine.
	press(m, "down", "down")
	sel := m.selected
	press(m, "s")
	press(m, "down", "down", "down")
	sel = m.selected
	f.Update(func(w FleetWriter) { w.Machine(sel).CPU = 0 })
	m.Update(refreshMsg{})
	if m.selected != sel || m.order[m.cursor].key != sel {
		t.Fatalf("after a re-sort the cursor left %s", sel)
	}
}

func TestFilter(t *testing.T) {
	m := newTestModel(t, fixtureFleet(30), 80, 24)
	press(m, "/", "d", "b")
	if !m.filtering || m.filter != "db" {
		t.Fatalf("filtering %v filter %q", m.filtering, m.filter)
	}
	for _, id := range ids(m) {
		if !strings.Contains(id, "db") {
			t.Fatalf("filter db shows %s", id)
		}
	}
	if len(m.order) != 8 {
		t.Fatalf("filter db: %d rows, want 8: %v", len(m.order), ids(m))
	}
	if !strings.Contains(m.View(), "/db█") {
		t.Fatal("the filter being typed is not shown")
	}
	press(m, "-", "0", "9", "enter")
	if m.filtering || len(m.order) != 1 || m.order[0].ID != "db-09" {
		t.Fatalf("filter db-09: %v", ids(m))
	}
	press(m, "enter")
	if m.view != viewDetail || m.selected != "db-09" {
		t.Fatalf("enter on filtered row: %q", m.selected)
	}
	press(m, "esc", "esc")
	if m.filter != "" || len(m.order) != 30 {
		t.Fatalf("esc leaves filter %q and %d rows", m.filter, len(m.order))
	}
	press(m, "/", "n", "o", "p", "e")
	if !strings.Contains(m.View(), `no machine matches "nope"`) {
		t.Fatal("empty filter result not explained")
	}
	press(m, "backspace", "backspace", "backspace", "backspace", "esc")
	if m.filter != "" || m.filtering {
		t.Fatal("esc does not end filtering")
	}
	// Label and hostname matches.
	press(m, "/", "p", "r", "o", "d", "enter")
	if len(m.order) != 29 {
		t.Fatalf("filter prod: %d rows", len(m.order))
	}
}

func TestAlertsAck(t *testing.T) {
	f := fixtureFleet(12)
	var mu sync.Mutex
	var acked []string
	m := newTestModel(t, f, 120, 40)
	m.opts.Ack = func(_ context.Context, id string) error {
		mu.Lock()
		defer mu.Unlock()
		acked = append(acked, id)
		if id == "a2" {
			return errors.New("hub answered 403 Forbidden: your role may not do this")
		}
		return nil
	}
	press(m, "a")
	if m.view != viewAlerts || !strings.Contains(m.View(), "No alert engine data is available") && !strings.Contains(m.View(), "no alert engine data is available") {
		t.Fatalf("alerts view without engine:\n%s", m.View())
	}
	if cmd := press(m, "k"); cmd != nil {
		t.Fatal("k without alerts did something")
	}
	f.SetAlerts(fixtureAlerts())
	m.Update(refreshMsg{})
	v := m.View()
	if !strings.Contains(v, "2 firing, 4 in all") {
		t.Fatalf("alerts view:\n%s", v)
	}
	// Firing first: a4 (10 min) and a1 (5 min) sorted newest first.
	cmd := press(m, "k")
	if cmd == nil {
		t.Fatal("k gave no command")
	}
	msg := cmd()
	m.Update(msg)
	if len(acked) != 1 || acked[0] != "a1" {
		t.Fatalf("acked %v, want [a1]", acked)
	}
	if !strings.Contains(m.View(), "acknowledged alert a1") {
		t.Fatalf("no ack confirmation:\n%s", m.View())
	}
	f.Read(func(v FleetView) {
		if !v.Alerts()[0].Acknowledged {
			t.Fatal("a1 not marked acknowledged")
		}
	})
	press(m, "down", "down")
	m.Update(press(m, "k")())
	if !strings.Contains(m.View(), "ack failed") || !strings.Contains(m.View(), "403") {
		t.Fatalf("role error not shown:\n%s", m.View())
	}
	press(m, "down")
	if cmd := press(m, "k"); cmd != nil {
		t.Fatal("acked an already acknowledged alert")
	}
	// Firing-alert counts reach the overview.
	press(m, "esc")
	f.Read(func(v FleetView) {
		if n := v.Machine("web-08").FiringAlerts; n != 1 {
			t.Fatalf("web-08 firing alerts %d", n)
		}
	})
	// Without a hub, k explains.
	m.opts.Ack = nil
	press(m, "a", "k")
	if !strings.Contains(m.View(), "acknowledging needs a hub") {
		t.Fatal("local ack not explained")
	}
}

func TestHostileStringsAreNeutralised(t *testing.T) {
	f := fixtureFleet(12)
	// Also through the hub's wire format.
	msg := `{"type":"machine","machine":{"id":"x\u001b[31mred","hostname":"h\u001b]0;title\u0007\u009b2J\r","labels":{"k\u001b":"v\u202e"},"online":true,"info":{"platform":"\u001b[5mblink","cpu_model":"\u009b1m"}}}`
	if err := f.HandleMessage([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	m := newTestModel(t, f, 120, 40)
	check := func(where string) {
		t.Helper()
		v := m.View()
		for _, bad := range []string{"\x1b", "\u009b", "\r", "\x07", "\u202e", "\xff"} {
			if strings.Contains(v, bad) {
				t.Fatalf("%s: %q reached the screen:\n%q", where, bad, v)
			}
		}
	}
	check("overview")
	press(m, "/", "e", "v", "i", "l", "enter", "enter")
	if !strings.Contains(m.View(), "evil?]0;pwned??[2J") {
		t.Fatalf("hostile hostname not shown as text:\n%s", m.View())
	}
	check("detail")
	press(m, "esc", "esc", "/", "r", "e", "d", "enter", "enter")
	check("detail of x?[31mred")
	f.SetAlerts(fixtureAlerts())
	press(m, "a")
	check("alerts")
}

func TestColourAndNoColor(t *testing.T) {
	f := fixtureFleet(12)
	r := lipgloss.NewRenderer(nil)
	r.SetColorProfile(termenv.ANSI256)
	m := New(Options{Fleet: f, Source: "x", Renderer: r, Now: func() time.Time { return fixedNow }})
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	if !strings.Contains(m.View(), "\x1b[") {
		t.Fatal("no colour with a colour profile")
	}
	env := func(vals map[string]string) func(string) string { return func(k string) string { return vals[k] } }
	if p := NewRenderer(nil, env(map[string]string{"NO_COLOR": "1", "TERM": "xterm-256color", "COLORTERM": "truecolor"})).ColorProfile(); p != termenv.Ascii {
		t.Fatalf("NO_COLOR: profile %v", p)
	}
	if NewRenderer(nil, env(map[string]string{"COLORFGBG": "0;15"})).HasDarkBackground() {
		t.Fatal("COLORFGBG 0;15 is a light background")
	}
}

func TestResize(t *testing.T) {
	m := newTestModel(t, fixtureFleet(50), 80, 24)
	for _, sz := range [][2]int{{80, 24}, {120, 40}, {200, 60}, {60, 10}, {100, 30}} {
		m.Update(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
		for _, view := range []string{"overview", "detail", "alerts", "help"} {
			switch view {
			case "detail":
				press(m, "enter")
			case "alerts":
				press(m, "a")
			case "help":
				press(m, "?")
			}
			ls := lines(m.View())
			if len(ls) != sz[1] {
				t.Fatalf("%v %s: %d lines", sz, view, len(ls))
			}
			for i, l := range ls {
				if w := ansi.StringWidth(l); w > sz[0] {
					t.Fatalf("%v %s: line %d is %d wide: %q", sz, view, i, w, l)
				}
			}
			press(m, "esc")
			if view == "help" {
				m.help = false
			}
		}
	}
	m.Update(tea.WindowSizeMsg{Width: 40, Height: 8})
	if !strings.Contains(m.View(), "terminal too small") {
		t.Fatal("tiny terminal not explained")
	}
}

func TestDisconnectedBanner(t *testing.T) {
	f := fixtureFleet(3)
	f.SetConn(ConnState{Err: "dial tcp 127.0.0.1:8000: connect: connection refused", RetryAt: fixedNow.Add(2e9)})
	m := newTestModel(t, f, 120, 40)
	v := m.View()
	if !strings.Contains(v, "disconnected, retrying") || !strings.Contains(v, "web-00") {
		t.Fatalf("no disconnected banner, or machines gone:\n%s", v)
	}
}

func TestBurstOfKeys(t *testing.T) {
	m := newTestModel(t, fixtureFleet(30), 80, 24)
	m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("/db-09")})
	if !m.filtering || m.filter != "db-09" || len(m.order) != 1 {
		t.Fatalf("burst: filtering %v filter %q rows %d", m.filtering, m.filter, len(m.order))
	}
}

// TestForgottenMachineLeavesViews: a machine the hub forgets leaves the
// overview; if its detail is open, the view goes back to the overview
// and says why, also from the alerts view opened over the detail.
func TestForgottenMachineLeavesViews(t *testing.T) {
	f := fixtureFleet(6)
	m := newTestModel(t, f, 100, 30)
	forget := func(id string) {
		t.Helper()
		if err := f.HandleMessage([]byte(`{"type":"machine","machine":{"id":"` + id + `","online":false},"forgotten":true}`)); err != nil {
			t.Fatal(err)
		}
		m.Update(refreshMsg{})
	}

	// On the overview: the row goes.
	forget("web-03")
	if got := strings.Join(ids(m), " "); got != "db-01 db-05 web-00 web-02 web-04" || m.total != 5 {
		t.Fatalf("rows after forgetting web-03: %s (total %d)", got, m.total)
	}

	// In the detail view of the forgotten machine: back to the overview.
	press(m, "down", "enter")
	if m.view != viewDetail || m.selected != "db-05" || f.Focus() != "db-05" {
		t.Fatalf("view %d selected %q focus %q", m.view, m.selected, f.Focus())
	}
	forget("web-02") // another machine: the detail stays
	if m.view != viewDetail || m.status != "" {
		t.Fatalf("forgetting another machine left the detail: view %d status %q", m.view, m.status)
	}
	forget("db-05")
	if m.view != viewOverview || f.Focus() != "" {
		t.Fatalf("after forgetting the machine in detail: view %d focus %q", m.view, f.Focus())
	}
	if want := "machine db-05 was forgotten by the hub"; m.status != want || !strings.Contains(m.View(), want) {
		t.Fatalf("status %q, view:\n%s", m.status, m.View())
	}
	if got := strings.Join(ids(m), " "); got != "db-01 web-00 web-04" || m.selected == "db-05" || m.order[m.cursor].key != m.selected {
		t.Fatalf("rows %s, cursor %d on %q", got, m.cursor, m.selected)
	}

	// Alerts view over a detail: Esc then leads to the overview.
	press(m, "enter", "a")
	if m.view != viewAlerts || m.back != viewDetail {
		t.Fatalf("view %d back %d", m.view, m.back)
	}
	gone := m.selected
	forget(gone)
	if m.view != viewAlerts || m.back != viewOverview || !strings.Contains(m.status, gone) {
		t.Fatalf("in alerts: view %d back %d status %q", m.view, m.back, m.status)
	}
	press(m, "esc")
	if m.view != viewOverview || slices.Contains(ids(m), gone) {
		t.Fatalf("esc from alerts: view %d rows %v", m.view, ids(m))
	}
}

// TestDetailOfUnknownMachineWaits: `top --detail ID` for a machine the
// hub has not sent yet waits on its page; it does not bounce back.
func TestDetailOfUnknownMachineWaits(t *testing.T) {
	f := NewFleet()
	m := New(Options{Fleet: f, Detail: "late", Now: func() time.Time { return fixedNow }})
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	m.Update(refreshMsg{})
	if m.view != viewDetail || !strings.Contains(m.View(), "late is gone") {
		t.Fatalf("view %d:\n%s", m.view, m.View())
	}
	if err := f.HandleMessage([]byte(`{"type":"snapshot","machines":[{"id":"late","online":true}]}`)); err != nil {
		t.Fatal(err)
	}
	m.Update(refreshMsg{})
	if m.view != viewDetail || strings.Contains(m.View(), "late is gone") {
		t.Fatalf("after the snapshot: view %d:\n%s", m.view, m.View())
	}
}
