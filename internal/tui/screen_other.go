//go:build !unix

package tui

import (
	"context"
	"os"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"golang.org/x/term"
)

// watchSize sends the terminal's size to p now and whenever it changes
// (checked every second: no SIGWINCH here) until ctx ends.
func watchSize(ctx context.Context, f *os.File, p *tea.Program) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	lw, lh := -1, -1
	for {
		if w, h, err := term.GetSize(int(f.Fd())); err == nil && (w != lw || h != lh) {
			lw, lh = w, h
			p.Send(tea.WindowSizeMsg{Width: w, Height: h})
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
