// Command sysmonstm is the one binary of every role: hub, agent, up, top,
// loadgen, export, push. This package only parses settings and wires components.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

const usage = `sysmonstm — real-time distributed system monitor

Usage: sysmonstm <command> [flags]

Commands:
  up        hub with embedded storage plus an agent for this machine (start here)
  hub       the central service: gRPC ingest, storage, HTTP API and dashboard
  agent     collect this machine's metrics and stream them to a hub
  loadgen   simulate many agents (real protocol) or a remote-write workload
  export    write stored history as CSV or JSON
  push      send a value (e.g. a backup's status) to the local agent: push NAME=VALUE [k=v …]
  top       terminal dashboard of a hub's machines (--hub URL) or this one (--local)
  edge      public read-only relay of a hub's live overview
  token     agent tokens: token create|list|revoke
  user      dashboard users: user add|passwd|remove|list
  machine   a running hub's machines: machine list|forget ID
  version   print version information (also: sysmonstm --version, -v)

Run 'sysmonstm <command> --help' for a command's flags. Every flag can also be
set with SYSMONSTM_<FLAG> (e.g. SYSMONSTM_DATA_DIR) or in a YAML file given
with --config; a flag beats the environment, which beats the file.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal starts an orderly shutdown; from then on a second one
	// ends the process at once (the data directory survives even SIGKILL).
	context.AfterFunc(ctx, stop)
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// isService reports whether command name runs until interrupted.
func isService(name string) bool {
	switch name {
	case "up", "hub", "agent", "edge", "loadgen":
		return true
	}
	return false
}

// sayShuttingDown tells the person at a terminal who pressed Ctrl-C that
// the command is ending and how to hurry it; logs say the same to others.
// The returned func cancels the notice.
func sayShuttingDown(ctx context.Context, name string, stderr io.Writer) func() bool {
	f, ok := stderr.(*os.File)
	if !ok || !isService(name) || !term.IsTerminal(int(f.Fd())) {
		return func() bool { return false }
	}
	return context.AfterFunc(ctx, func() {
		fmt.Fprintf(stderr, "sysmonstm %s: shutting down (press Ctrl-C again to stop at once)\n", name)
	})
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmds := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"agent":   runAgent,
		"top":     runTop,
		"export":  runExport,
		"push":    runPush,
		"version": runVersion,
	}
	registerServer(cmds)
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "-v", "-version", "--version":
		name = "version"
	}
	cmd, ok := cmds[name]
	if !ok {
		fmt.Fprintf(stderr, "sysmonstm: unknown command %q\n\n%s", name, usage)
		return 2
	}
	defer sayShuttingDown(ctx, name, stderr)()
	if err := cmd(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "sysmonstm %s: %v\n", name, err)
		return 1
	}
	return 0
}
