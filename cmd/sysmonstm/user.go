//go:build !agentonly

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/sysmonstm/sysmonstm/internal/auth"
)

const userUsage = `Usage: sysmonstm user <command> [flags]

Manage dashboard users in the hub's database (the hub may be running).
Roles: admin (changes rules, notifiers, tokens and users) and viewer (reads).

Commands:
  add NAME [--role admin|viewer] [--password-stdin]
           add a user; the password is asked twice, or read from stdin
  passwd NAME [--password-stdin]
           set a new password; the user's sessions end
  remove NAME
           remove a user and end their sessions (not the last admin)
  list     list users and roles
`

func runUser(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "user", userUsage, []subcommand{
		{"add", runUserAdd}, {"passwd", runUserPasswd}, {"remove", runUserRemove}, {"list", runUserList},
	}, func(fs *flag.FlagSet) {
		fs.String("role", "viewer", "add: `ROLE`, admin or viewer")
		fs.Bool("password-stdin", false, "add, passwd: read the password from standard input (one line)")
		fs.Bool("json", false, "list: print JSON")
	}, args, stdout, stderr)
}

// userFlagSet is a `sysmonstm user …` flag set with --data-dir and
// --postgres.
func userFlagSet(name string, stderr io.Writer) (*flag.FlagSet, *metaTarget) {
	return adminFlagSet(name, userUsage, stderr)
}

// readPassword reads a new password: one line from stdin with fromStdin,
// else typed twice on the terminal.
func readPassword(user string, fromStdin bool, stderr io.Writer) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(io.LimitReader(os.Stdin, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password from stdin: %w", err)
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			return "", errors.New("--password-stdin: standard input is empty")
		}
		return line, nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", errors.New("standard input is not a terminal: pipe the password with --password-stdin")
	}
	fmt.Fprintf(stderr, "New password for %s: ", user)
	a, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	fmt.Fprintf(stderr, "Repeat it: ")
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if string(a) != string(b) {
		return "", errors.New("the passwords differ; nothing changed")
	}
	return string(a), nil
}

func runUserAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dataDir := userFlagSet("user add", stderr)
	role := fs.String("role", "viewer", "`ROLE`: admin or viewer")
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input (one line)")
	pos, err := parseSub(fs, args, "NAME")
	if err != nil {
		return err
	}
	name := pos[0]
	r, err := auth.ParseRole(*role)
	if err != nil {
		return fmt.Errorf("--role: %w", err)
	}
	if err := auth.ValidateUserName(name); err != nil {
		return err
	}
	st, d, err := openAuth(ctx, dataDir, false, stderr)
	if err != nil {
		return err
	}
	defer d.Close()
	pw, err := readPassword(name, *fromStdin, stderr)
	if err != nil {
		return err
	}
	if _, err := st.AddUser(ctx, name, pw, r); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added user %s (%s)\n", name, r)
	return nil
}

func runUserPasswd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dataDir := userFlagSet("user passwd", stderr)
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input (one line)")
	pos, err := parseSub(fs, args, "NAME")
	if err != nil {
		return err
	}
	st, d, err := openAuth(ctx, dataDir, true, stderr)
	if err != nil {
		return err
	}
	defer d.Close()
	pw, err := readPassword(pos[0], *fromStdin, stderr)
	if err != nil {
		return err
	}
	if _, err := st.UpdateUser(ctx, pos[0], nil, &pw); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "password of %s changed; their sessions ended\n", pos[0])
	return nil
}

func runUserRemove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dataDir := userFlagSet("user remove", stderr)
	pos, err := parseSub(fs, args, "NAME")
	if err != nil {
		return err
	}
	st, d, err := openAuth(ctx, dataDir, true, stderr)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := st.RemoveUser(ctx, pos[0]); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "removed user %s\n", pos[0])
	return nil
}

func runUserList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dataDir := userFlagSet("user list", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseSub(fs, args); err != nil {
		return err
	}
	st, d, err := openAuth(ctx, dataDir, true, stderr)
	if err != nil {
		return err
	}
	defer d.Close()
	us, err := st.ListUsers(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(us)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tROLE\tCREATED\tUPDATED")
	for _, u := range us {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Name, u.Role, u.CreatedAt.Local().Format(time.RFC3339), u.UpdatedAt.Local().Format(time.RFC3339))
	}
	return tw.Flush()
}
