//go:build unix

package tui

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	tea "github.com/charmbracelet/bubbletea"
	"golang.org/x/term"
)

// watchSize sends the terminal's size to p now and on every SIGWINCH until
// ctx ends.
func watchSize(ctx context.Context, f *os.File, p *tea.Program) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGWINCH)
	defer signal.Stop(sig)
	for {
		if w, h, err := term.GetSize(int(f.Fd())); err == nil {
			p.Send(tea.WindowSizeMsg{Width: w, Height: h})
		}
		select {
		case <-ctx.Done():
			return
		case <-sig:
		}
	}
}
