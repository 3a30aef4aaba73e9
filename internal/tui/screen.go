package tui

import (
	"io"
	"strconv"
	"strings"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

// screen draws frames on the terminal itself instead of Bubble Tea's
// renderer, which flushes on a ticker: at 120 frames a second that ticker
// alone woke an idle dashboard 120 times a second (about 1 % of a core),
// and at fewer frames a key waits up to a whole frame before it shows.
// screen writes a frame at once, right after the update that made it,
// and only the lines that changed. It is used from the event loop only.
type screen struct {
	out   io.Writer
	w, h  int
	last  []string // the lines on the terminal
	clear bool     // erase everything before the next frame
	buf   []byte
}

// Control sequences (xterm; every terminal in use understands them).
const (
	seqEnter = "\x1b[?1049h\x1b[?25l\x1b[?2004h\x1b[2J\x1b[H" // alternate screen, hide cursor, bracketed paste, clear
	seqLeave = "\x1b[?2004l\x1b[?25h\x1b[?1049l"              // and back
)

func newScreen(out io.Writer) *screen { return &screen{out: out} }

// start switches to the alternate screen.
func (s *screen) start() { _, _ = io.WriteString(s.out, seqEnter) }

// stop restores the normal screen and the cursor.
func (s *screen) stop() { _, _ = io.WriteString(s.out, seqLeave) }

// resize records the terminal size; a new size redraws everything.
func (s *screen) resize(w, h int) {
	if w != s.w || h != s.h {
		s.w, s.h, s.clear = w, h, true
	}
}

// draw puts frame (lines separated by \n) on the terminal, writing only
// the lines that differ from the previous frame, in one write.
func (s *screen) draw(frame string) {
	if s.w <= 0 || s.h <= 0 {
		return
	}
	lines := strings.Split(frame, "\n")
	if len(lines) > s.h {
		lines = lines[:s.h] // never scroll
	}
	b := s.buf[:0]
	if s.clear {
		b = append(b, "\x1b[2J"...)
		s.last, s.clear = nil, false
	}
	for i, l := range lines {
		if i < len(s.last) && s.last[i] == l {
			continue
		}
		b = moveTo(b, i)
		w := ansi.StringWidth(l)
		if w > s.w {
			l, w = ansi.Truncate(l, s.w, ""), s.w
		}
		b = append(b, l...)
		if w < s.w {
			b = append(b, "\x1b[K"...) // erase what the previous frame left
		}
	}
	for i := len(lines); i < len(s.last); i++ {
		b = moveTo(b, i)
		b = append(b, "\x1b[2K"...)
	}
	s.last = lines
	if len(b) > 0 {
		_, _ = s.out.Write(b)
	}
	if cap(b) <= 64<<10 {
		s.buf = b
	}
}

// moveTo appends the cursor move to the start of line i (0-based).
func moveTo(b []byte, i int) []byte {
	b = append(b, "\x1b["...)
	b = strconv.AppendInt(b, int64(i+1), 10)
	return append(b, ";1H"...)
}

// app runs the Model under Bubble Tea (which reads and parses the keys)
// and draws each new state on the screen as soon as the update is done.
type app struct {
	m   *Model
	scr *screen
}

func (a *app) Init() tea.Cmd { return a.m.Init() }

func (a *app) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if ws, ok := msg.(tea.WindowSizeMsg); ok {
		a.scr.resize(ws.Width, ws.Height)
	}
	_, cmd := a.m.Update(msg)
	a.scr.draw(a.m.View())
	return a, cmd
}

// View is empty: the program runs without Bubble Tea's renderer.
func (a *app) View() string { return "" }
