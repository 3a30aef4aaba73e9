package tui

import (
	"context"
	"errors"
	"io"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// Source keeps a fleet up to date until ctx ends (a hub Client, Local).
type Source interface {
	Run(ctx context.Context, f *Fleet) error
}

// RunOptions configure Run.
type RunOptions struct {
	Model   Options
	Source  Source
	In      io.Reader
	Out     io.Writer
	Refresh time.Duration // least time between two data-driven frames; default 500ms
}

// Run shows the dashboard until the user quits or ctx ends. Data updates are
// coalesced: at most one frame per Refresh, however many messages arrive;
// keys draw at once.
func Run(ctx context.Context, o RunOptions) error {
	if o.Refresh <= 0 {
		o.Refresh = 500 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := o.Model.Fleet
	p := tea.NewProgram(New(o.Model),
		tea.WithContext(ctx), tea.WithInput(o.In), tea.WithOutput(o.Out),
		tea.WithAltScreen(), tea.WithFPS(120))
	srcDone := make(chan error, 1)
	go func() { srcDone <- o.Source.Run(ctx, f) }()
	go func() {
		t := time.NewTimer(0)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-f.Changed():
			}
			p.Send(refreshMsg{})
			t.Reset(o.Refresh)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	_, err := p.Run()
	cancel()
	<-srcDone
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil
	}
	return err
}
