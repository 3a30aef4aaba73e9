package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"
)

func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, lf := newFlagSet("export", "Write a machine's stored history as CSV or JSON (the same data as GET /api/export).", stderr)
	hubURL := fs.String("url", "http://127.0.0.1:8000", "hub HTTP base `URL`")
	machine := fs.String("machine", "", "machine `ID` (required)")
	metricName := fs.String("metric", "", "only this metric `NAME` (default: every metric of the machine)")
	from := fs.String("from", "-1h", "start `TIME`: RFC 3339, unix seconds, or a negative duration relative to now")
	to := fs.String("to", "now", "end `TIME`: RFC 3339, unix seconds, now, or a negative duration")
	format := fs.String("format", "csv", "output `FORMAT`: csv or json")
	out := fs.String("output", "-", "`FILE` to write, - for standard output")
	token := fs.String("token", "", "login `TOKEN` for the hub's API (from POST /api/auth/login); needed when the hub is not on loopback")
	if _, err := parse(fs, lf, args, stderr); err != nil {
		return err
	}
	if *machine == "" {
		return fmt.Errorf("--machine is required (list machines with: curl %s/api/machines)", *hubURL)
	}
	if *format != "csv" && *format != "json" {
		return fmt.Errorf("--format %q: want csv or json", *format)
	}
	base, err := url.Parse(*hubURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return fmt.Errorf("--url %q: want http(s)://HOST:PORT", *hubURL)
	}
	q := url.Values{"machine": {*machine}, "from": {*from}, "to": {*to}, "format": {*format}}
	if *metricName != "" {
		q.Set("metric", *metricName)
	}
	u := base.JoinPath("/api/export")
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	if *token != "" {
		req.Header.Set("Authorization", "Bearer "+*token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Minute}).Do(req)
	if err != nil {
		return fmt.Errorf("reach hub: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&e)
		return fmt.Errorf("hub answered %s: %s", resp.Status, e.Error)
	}
	w := stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("write export: %w", err)
	}
	return nil
}
