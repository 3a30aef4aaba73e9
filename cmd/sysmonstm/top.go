package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/term"

	"github.com/sysmonstm/sysmonstm/internal/collect"
	"github.com/sysmonstm/sysmonstm/internal/tui"
)

func runTop(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, lf := newFlagSet("top", "Terminal dashboard: watch a hub's machines live (--hub), or this machine alone (--local).", stderr)
	hubURL := fs.String("hub", "http://127.0.0.1:8000", "hub HTTP base `URL` (its API and WebSocket)")
	token := fs.String("token", "", "login `TOKEN` for the hub's API (from POST /api/auth/login); needed when the hub is not on loopback")
	local := fs.Bool("local", false, "collect this machine's metrics in-process; no hub")
	logFile := fs.String("log-file", filepath.Join(os.TempDir(), "sysmonstm-top.log"), "`FILE` the dashboard logs to (never the screen)")
	interval := fs.Duration("interval", time.Second, "collection interval with --local")
	refresh := fs.Duration("refresh", 500*time.Millisecond, "least time between two data-driven redraws")
	if _, err := parse(fs, lf, args, io.Discard); err != nil {
		return err
	}
	if *interval < 100*time.Millisecond || *interval > time.Hour {
		return fmt.Errorf("--interval %s: must be between 100ms and 1h", *interval)
	}
	if *refresh < 10*time.Millisecond || *refresh > 10*time.Second {
		return fmt.Errorf("--refresh %s: must be between 10ms and 10s", *refresh)
	}
	out, ok := stdout.(*os.File)
	if !ok || !term.IsTerminal(int(out.Fd())) || !term.IsTerminal(int(os.Stdin.Fd())) {
		return errors.New("top needs a terminal on standard input and output (try: ssh -t HOST sysmonstm top …)")
	}
	lfile, err := os.OpenFile(*logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("--log-file: %w", err)
	}
	defer lfile.Close()
	if lf.format == "auto" {
		lf.format = "text"
	}
	log, err := lf.logger(lfile)
	if err != nil {
		return err
	}

	fleet := tui.NewFleet()
	mo := tui.Options{Fleet: fleet, Renderer: tui.NewRenderer(out, os.Getenv)}
	var src tui.Source
	if *local {
		host, _ := os.Hostname()
		src = &tui.Local{ID: host, Interval: *interval, Options: collect.Options{Logger: log.With("component", "collect")}}
		mo.Source, mo.Detail = "local", host
	} else {
		c, err := tui.NewClient(*hubURL, *token, log.With("component", "tui"))
		if err != nil {
			return fmt.Errorf("--hub: %w", err)
		}
		src = c
		mo.Source = "hub " + c.String()
		mo.Ack, mo.Processes = c.Ack, c.Processes
	}
	log.Info("top starting", "source", mo.Source)
	err = tui.Run(ctx, tui.RunOptions{Model: mo, Source: src, In: os.Stdin, Out: out, Refresh: *refresh})
	log.Info("top stopped", "err", err)
	return err
}
