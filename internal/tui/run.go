package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"golang.org/x/term"
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

// refreshLoop sends p a refreshMsg when the fleet changed, at most once per
// every (data arrives all the time), but at once for urgent changes (the
// first snapshot, a lost connection).
func refreshLoop(ctx context.Context, f *Fleet, p interface{ Send(tea.Msg) }, every time.Duration) {
	t := time.NewTimer(every)
	t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.Changed():
		case <-f.Urgent():
		}
		p.Send(refreshMsg{})
		t.Reset(every)
	wait:
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				break wait
			case <-f.Urgent():
				p.Send(refreshMsg{})
			}
		}
	}
}

// Run shows the dashboard until the user quits or ctx ends. Data updates are
// coalesced: at most one frame per Refresh, however many messages arrive;
// keys draw at once (see screen). When In and Out are terminals, Run puts
// the input in raw mode and follows the terminal's size itself.
func Run(ctx context.Context, o RunOptions) error {
	if o.Refresh <= 0 {
		o.Refresh = 500 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := o.Model.Fleet
	scr := newScreen(o.Out)
	p := tea.NewProgram(&app{m: New(o.Model), scr: scr},
		tea.WithContext(ctx), tea.WithInput(o.In), tea.WithOutput(o.Out), tea.WithoutRenderer())
	// Without its renderer Bubble Tea leaves the terminal alone: raw input
	// and the size are ours to handle.
	if in, ok := o.In.(*os.File); ok && term.IsTerminal(int(in.Fd())) {
		st, err := term.MakeRaw(int(in.Fd()))
		if err != nil {
			return fmt.Errorf("terminal raw mode: %w", err)
		}
		defer func() { _ = term.Restore(int(in.Fd()), st) }()
	}
	if out, ok := o.Out.(*os.File); ok && term.IsTerminal(int(out.Fd())) {
		go watchSize(ctx, out, p)
	}
	scr.start()
	defer scr.stop()

	srcDone := make(chan error, 1)
	go func() { srcDone <- o.Source.Run(ctx, f) }()
	go refreshLoop(ctx, f, p, o.Refresh)
	_, err := p.Run()
	cancel()
	<-srcDone
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil
	}
	return err
}
