//go:build !agentonly

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"
)

const machineUsage = `Usage: sysmonstm machine <command> [flags]

List or forget the machines a running hub knows (through its HTTP API).

Commands:
  list     list machines: id, online, last seen, hostname
  forget ID
           remove a machine from the hub's list, its registry and its
           alerts (admin); its stored history stays. A machine that sends
           data again reappears.
`

func runMachine(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "--help", "-help", "help":
			fs := machineFlagSet("machine", stderr)
			machineFlags(fs)
			fs.Usage()
			return flag.ErrHelp
		}
	}
	return runSubcommand(ctx, "machine", machineUsage, []subcommand{
		{"list", runMachineList}, {"forget", runMachineForget},
	}, nil, args, stdout, stderr)
}

// machineFlagSet is a `sysmonstm machine …` flag set (--config and the log
// flags), printing machineUsage for --help.
func machineFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs, _ := newFlagSet(name, "", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, machineUsage+"\nFlags:\n"); fs.PrintDefaults() }
	return fs
}

// machineClient is the hub a `sysmonstm machine` command talks to.
type machineClient struct {
	base  *url.URL
	token string
	http  *http.Client
}

// machineFlags registers --hub and --token (and --json) on fs.
func machineFlags(fs *flag.FlagSet) (hubURL, token *string, asJSON *bool) {
	hubURL = fs.String("hub", "http://127.0.0.1:8000", "hub HTTP base URL")
	token = fs.String("token", "", "bearer token of an admin session (POST /api/auth/login) for forget; optional for list on a loopback hub")
	asJSON = fs.Bool("json", false, "list: print JSON")
	return hubURL, token, asJSON
}

func newMachineClient(hubURL, token string) (*machineClient, error) {
	base, err := url.Parse(hubURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("--hub %q: want http(s)://HOST:PORT", hubURL)
	}
	return &machineClient{base: base, token: token, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// do sends method path and returns the response, or an error carrying
// the hub's {"error"} text for a status other than want.
func (c *machineClient) do(ctx context.Context, method, path string, want int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base.JoinPath(path).String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reach hub: %w", err)
	}
	if resp.StatusCode == want {
		return resp, nil
	}
	defer resp.Body.Close()
	var e struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&e)
	msg := fmt.Sprintf("hub answered %s: %s", resp.Status, e.Error)
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		msg += " (pass an admin's session token with --token; get one with POST /api/auth/login)"
	}
	return nil, fmt.Errorf("%s", msg)
}

func runMachineList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := machineFlagSet("machine list", stderr)
	hubURL, token, asJSON := machineFlags(fs)
	if _, err := parseSub(fs, args); err != nil {
		return err
	}
	c, err := newMachineClient(*hubURL, *token)
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, http.MethodGet, "/api/machines", http.StatusOK)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var ms []struct {
		ID       string     `json:"id"`
		Hostname string     `json:"hostname"`
		Online   bool       `json:"online"`
		LastSeen *time.Time `json:"last_seen"`
		Info     struct {
			Source string `json:"source"`
		} `json:"info"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(&ms); err != nil {
		return fmt.Errorf("read machine list: %w", err)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(ms)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tLAST SEEN\tSOURCE\tHOSTNAME")
	for _, m := range ms {
		state, seen, source := "offline", "never", m.Info.Source
		if m.Online {
			state = "online"
		}
		if m.LastSeen != nil {
			seen = m.LastSeen.UTC().Format(time.RFC3339)
		}
		if source == "" {
			source = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", printable(m.ID), state, seen, source, printable(m.Hostname))
	}
	return tw.Flush()
}

func runMachineForget(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := machineFlagSet("machine forget", stderr)
	hubURL, token, _ := machineFlags(fs)
	pos, err := parseSub(fs, args, "ID")
	if err != nil {
		return err
	}
	c, err := newMachineClient(*hubURL, *token)
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, http.MethodDelete, "/api/machines/"+url.PathEscape(pos[0]), http.StatusNoContent)
	if err != nil {
		return fmt.Errorf("forget %q: %w", pos[0], err)
	}
	resp.Body.Close()
	fmt.Fprintf(stdout, "forgot machine %s; its stored history stays (it reappears if it sends data again)\n", printable(pos[0]))
	return nil
}

// printable replaces control characters in agent-supplied text, so a
// hostile machine id cannot drive the terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}
