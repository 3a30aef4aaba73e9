package tui

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// TestStyleRenderMatchesLipgloss: the cached wrapping renders exactly what
// Lip Gloss renders, for every style, profile and background.
func TestStyleRenderMatchesLipgloss(t *testing.T) {
	texts := []string{"x", "  97.5", "web-01 (web-01.example)", "–", "▶ selected row", "multi\nline", "tab\there", "\x1b[1mpre-styled\x1b[0m"}
	for _, profile := range []termenv.Profile{termenv.Ascii, termenv.ANSI, termenv.ANSI256, termenv.TrueColor} {
		for _, dark := range []bool{true, false} {
			r := lipgloss.NewRenderer(nil)
			r.SetColorProfile(profile)
			r.SetHasDarkBackground(dark)
			st := newStyles(r)
			for _, s := range []*style{&st.title, &st.header, &st.selected, &st.dim, &st.ok, &st.warn, &st.crit, &st.bold} {
				for _, text := range texts {
					if got, want := s.Render(text), s.Style.Render(text); got != want {
						t.Fatalf("profile %v dark %v: Render(%q) = %q, lipgloss %q", profile, dark, text, got, want)
					}
				}
			}
		}
	}
}

// TestScreenDrawsOnlyChangedLines: the first frame is drawn whole, the
// next only where it differs; a resize clears and redraws; lines beyond the
// terminal are never written (no scrolling).
func TestScreenDrawsOnlyChangedLines(t *testing.T) {
	var out bytes.Buffer
	s := newScreen(&out)
	s.draw("ignored before the size is known")
	if out.Len() != 0 {
		t.Fatalf("drew before the size: %q", out.String())
	}
	s.resize(10, 3)
	s.draw("aaaaaaaaaa\nbbb\ncccccccccc\nnever")
	if got, want := out.String(), "\x1b[2J\x1b[1;1Haaaaaaaaaa\x1b[2;1Hbbb\x1b[K\x1b[3;1Hcccccccccc"; got != want {
		t.Fatalf("first frame %q, want %q", got, want)
	}
	out.Reset()
	s.draw("aaaaaaaaaa\nbbX\ncccccccccc")
	if got, want := out.String(), "\x1b[2;1HbbX\x1b[K"; got != want {
		t.Fatalf("second frame %q, want %q", got, want)
	}
	out.Reset()
	s.draw("aaaaaaaaaa\nbbX\ncccccccccc")
	if out.Len() != 0 {
		t.Fatalf("an unchanged frame wrote %q", out.String())
	}
	s.draw("aaaaaaaaaa")
	if got, want := out.String(), "\x1b[2;1H\x1b[2K\x1b[3;1H\x1b[2K"; got != want {
		t.Fatalf("shorter frame %q, want %q", got, want)
	}
	out.Reset()
	s.resize(4, 2)
	s.draw("toolongline\n\x1b[7mwide\x1b[0mXX")
	if got := out.String(); !strings.HasPrefix(got, "\x1b[2J\x1b[1;1Htool\x1b[2;1H") || strings.Contains(got, "XX") || strings.Contains(got, "ongline") {
		t.Fatalf("after resize %q", got)
	}
}

// TestAppDrawsEveryUpdate: a key is on the terminal when Update returns,
// not on the next tick of a renderer.
func TestAppDrawsEveryUpdate(t *testing.T) {
	var out bytes.Buffer
	a := &app{m: New(Options{Fleet: fixtureFleet(5), Source: "x", Now: func() time.Time { return fixedNow }}), scr: newScreen(&out)}
	a.Update(tea.WindowSizeMsg{Width: 100, Height: 20})
	if !strings.Contains(out.String(), "MACHINE") {
		t.Fatalf("no frame after the size: %q", out.String())
	}
	out.Reset()
	a.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("?")})
	if !strings.Contains(out.String(), "Keys") {
		t.Fatalf("help not drawn by the key's update: %q", out.String())
	}
	if a.View() != "" {
		t.Fatal("View should be empty: the app draws itself")
	}
}

// sends records the messages refreshLoop sends.
type sends struct{ ch chan tea.Msg }

func (s *sends) Send(m tea.Msg) { s.ch <- m }

// TestRefreshLoop: data changes are coalesced to one frame per interval;
// an urgent change (the first snapshot, a lost connection) is drawn at once.
func TestRefreshLoop(t *testing.T) {
	f := NewFleet()
	s := &sends{ch: make(chan tea.Msg, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go refreshLoop(ctx, f, s, time.Hour)
	expect := func(what string, want bool) {
		t.Helper()
		select {
		case <-s.ch:
			if !want {
				t.Fatalf("%s: a refresh was sent", what)
			}
		case <-time.After(200 * time.Millisecond):
			if want {
				t.Fatalf("%s: no refresh", what)
			}
		}
	}
	f.Update(func(FleetWriter) {})
	expect("first change", true)
	f.Update(func(FleetWriter) {})
	expect("change within the interval", false)
	if err := f.HandleMessage([]byte(`{"type":"snapshot","mode":"summary","machines":[]}`)); err != nil {
		t.Fatal(err)
	}
	expect("snapshot within the interval", true)
	f.SetConn(ConnState{Connected: true}) // unchanged: not urgent
	expect("same connection state", false)
	f.SetConn(ConnState{Err: "gone"})
	expect("lost connection", true)
}
