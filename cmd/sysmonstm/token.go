//go:build !agentonly

package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/auth"
	"github.com/sysmonstm/sysmonstm/internal/config"
	"github.com/sysmonstm/sysmonstm/internal/db"
)

const tokenUsage = `Usage: sysmonstm token <command> [flags]

Manage agent tokens in the hub's database (the hub may be running: it sees
changes within seconds).

Commands:
  create [--machine ID] [--expires DURATION] [--name NOTE]
           print a new agent token; it is shown only this once
  list     list tokens (never their secrets)
  revoke ID
           revoke a token; agents using it are disconnected within seconds
`

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "token", tokenUsage, []subcommand{
		{"create", runTokenCreate}, {"list", runTokenList}, {"revoke", runTokenRevoke},
	}, func(fs *flag.FlagSet) {
		fs.String("machine", "", "create: bind the token to this machine `ID` (default: any, up to the hub's --max-machines-per-token)")
		fs.String("expires", "", "create: `LIFETIME`, e.g. 720h or 30d (default: never)")
		fs.String("name", "", "create: `TEXT` noting what the token is for")
		fs.Bool("json", false, "create, list: print JSON")
	}, args, stdout, stderr)
}

// tokenFlagSet is a `sysmonstm token …` flag set with --data-dir and
// --postgres.
func tokenFlagSet(name string, stderr io.Writer) (*flag.FlagSet, *metaTarget) {
	return adminFlagSet(name, tokenUsage, stderr)
}

// openAuth opens the auth store on PostgreSQL (--postgres or
// SYSMONSTM_POSTGRES) or in the hub's data directory. must says an SQLite
// database must already exist (a typo in --data-dir would otherwise
// create an empty one).
func openAuth(ctx context.Context, t *metaTarget, must bool, stderr io.Writer) (*auth.Store, *sql.DB, error) {
	if pg := t.Postgres; pg != "" {
		d, err := db.OpenPostgres(ctx, pg)
		if err != nil {
			return nil, nil, fmt.Errorf("--postgres: %w", err)
		}
		st, err := auth.Open(ctx, d, auth.Options{})
		if err != nil {
			d.Close()
			return nil, nil, err
		}
		return st, d, nil
	}
	dataDir := t.DataDir
	_, err := os.Stat(db.Path(dataDir))
	switch {
	case err != nil && must:
		return nil, nil, fmt.Errorf("no hub database in %s: is --data-dir right? (%w)", dataDir, err)
	case err != nil:
		fmt.Fprintf(stderr, "note: %s has no hub database yet; created one: start the hub with --data-dir %s\n", dataDir, dataDir)
	}
	d, err := db.Open(dataDir)
	if err != nil {
		return nil, nil, err
	}
	st, err := auth.Open(ctx, d, auth.Options{})
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	return st, d, nil
}

// splitArgs separates positional arguments from flags so that both
// `user add NAME --role admin` and `user add --role admin NAME` work.
func splitArgs(fs *flag.FlagSet, args []string) (pos, flags []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(pos, args[i+1:]...), flags
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue // flag parsing reports it
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return pos, flags
}

// parseSub parses a subcommand's flags and returns exactly want
// positional arguments (named in the error).
func parseSub(fs *flag.FlagSet, args []string, want ...string) ([]string, error) {
	pos, flags := splitArgs(fs, args)
	if err := config.Parse(fs, flags, os.Getenv); err != nil {
		return nil, err
	}
	if len(pos) != len(want) {
		if len(want) == 0 {
			return nil, fmt.Errorf("unexpected argument %q", pos[0])
		}
		return nil, fmt.Errorf("want %s, got %d argument(s)", strings.Join(want, " "), len(pos))
	}
	return pos, nil
}

func runTokenCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dataDir := tokenFlagSet("token create", stderr)
	machine := fs.String("machine", "", "bind the token to this machine `ID` (default: any, up to the hub's --max-machines-per-token)")
	expires := fs.String("expires", "", "`LIFETIME`, e.g. 720h or 30d (default: never)")
	name := fs.String("name", "", "`TEXT` noting what the token is for")
	asJSON := fs.Bool("json", false, "print the token and its record as JSON")
	if _, err := parseSub(fs, args); err != nil {
		return err
	}
	exp, err := auth.ParseExpiry(*expires)
	if err != nil {
		return fmt.Errorf("--expires: %w", err)
	}
	st, d, err := openAuth(ctx, dataDir, false, stderr)
	if err != nil {
		return err
	}
	defer d.Close()
	t, tok, err := st.CreateToken(ctx, auth.NewToken{Name: *name, Machine: *machine, Expires: exp})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(struct {
			auth.Token
			Secret string `json:"token"`
		}{t, tok})
	}
	fmt.Fprintln(stdout, tok)
	bound := "any machine id"
	if t.Machine != "" {
		bound = "machine " + t.Machine + " only"
	}
	until := "never expires"
	if t.ExpiresAt != nil {
		until = "expires " + t.ExpiresAt.Format(time.RFC3339)
	}
	fmt.Fprintf(stderr, "created agent token %s (%s; %s). It is shown only now: pass it to the agent with --token or SYSMONSTM_TOKEN.\n", t.ID, bound, until)
	return nil
}

func runTokenList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dataDir := tokenFlagSet("token list", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseSub(fs, args); err != nil {
		return err
	}
	st, d, err := openAuth(ctx, dataDir, true, stderr)
	if err != nil {
		return err
	}
	defer d.Close()
	ts, err := st.ListTokens(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(ts)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tMACHINE\tNAME\tCREATED\tEXPIRES\tLAST USED")
	for _, t := range ts {
		status := "active"
		switch {
		case t.Revoked:
			status = "revoked"
		case t.Expired:
			status = "expired"
		}
		machine := t.Machine
		if machine == "" {
			machine = fmt.Sprintf("any (%d used)", t.Machines)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, status, machine, t.Name, t.CreatedAt.Format(time.RFC3339), timeOr(t.ExpiresAt, "never"), timeOr(t.LastUsedAt, "never"))
	}
	return tw.Flush()
}

func timeOr(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.Local().Format(time.RFC3339)
}

func runTokenRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dataDir := tokenFlagSet("token revoke", stderr)
	pos, err := parseSub(fs, args, "ID")
	if err != nil {
		return err
	}
	st, d, err := openAuth(ctx, dataDir, true, stderr)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := st.RevokeToken(ctx, pos[0]); err != nil {
		if errors.Is(err, auth.ErrNotFound) {
			return fmt.Errorf("%w (see `sysmonstm token list`)", err)
		}
		return err
	}
	fmt.Fprintf(stdout, "revoked token %s; agents using it are disconnected within seconds\n", pos[0])
	return nil
}
