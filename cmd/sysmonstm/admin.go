//go:build !agentonly

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// subcommand is one command of an admin group (`sysmonstm token create`).
type subcommand struct {
	name string
	run  func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// runSubcommand dispatches `sysmonstm GROUP SUB …` to subs; helpFlags
// registers every subcommand's flags on the help flag set.
func runSubcommand(ctx context.Context, group, usage string, subs []subcommand, helpFlags func(*flag.FlagSet),
	args []string, stdout, stderr io.Writer) error {
	sub, rest := "", args
	if len(args) > 0 {
		sub, rest = args[0], args[1:]
	}
	names := make([]string, len(subs))
	for i, s := range subs {
		if s.name == sub {
			return s.run(ctx, rest, stdout, stderr)
		}
		names[i] = s.name
	}
	want := strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
	switch sub {
	case "-h", "--help", "-help", "help":
		fs, _ := adminFlagSet(group, usage, stderr)
		helpFlags(fs)
		fmt.Fprint(stderr, usage+"\nFlags:\n")
		fs.PrintDefaults()
		return flag.ErrHelp
	case "":
		fmt.Fprint(stderr, usage)
		return errors.New("missing command: " + want)
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown %s command %q: want %s", group, sub, want)
}

// metaTarget is the metadata database an admin command works on: the
// hub's SQLite file in DataDir, or PostgreSQL (--postgres).
type metaTarget struct {
	DataDir  string
	Postgres string
}

// adminFlagSet is a `sysmonstm token|user …` flag set with --data-dir and
// --postgres.
func adminFlagSet(name, usage string, stderr io.Writer) (*flag.FlagSet, *metaTarget) {
	fs, _ := newFlagSet(name, "", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage+"\nFlags:\n"); fs.PrintDefaults() }
	t := &metaTarget{}
	fs.StringVar(&t.DataDir, "data-dir", defaultDataDir, "the hub's data `DIR`")
	postgresFlag(fs, &t.Postgres)
	return fs, t
}

// postgresFlag registers --postgres on fs (SYSMONSTM_POSTGRES, like every
// flag's variable).
func postgresFlag(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "postgres", "", "PostgreSQL `URL` (postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE) holding users, sessions, tokens and alert rules, state, silences and notifiers, shared by every hub using it; default: SQLite in --data-dir")
}
