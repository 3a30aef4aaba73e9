package tui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// Client talks to a hub: its WebSocket for the live fleet and its REST API
// for alerts, acknowledgements and a machine's process list.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
	log   *slog.Logger
}

// ErrNoAlerts means the hub has no alert engine (GET /api/alerts is 404).
var ErrNoAlerts = errors.New("no alert engine data is available from this hub")

// NewClient returns a client for the hub at base (http or https URL).
func NewClient(base, token string, log *slog.Logger) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("hub URL %q: want http(s)://HOST:PORT", base)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{base: u, token: token, http: &http.Client{Timeout: 10 * time.Second}, log: log}, nil
}

// String returns the hub's base URL.
func (c *Client) String() string { return c.base.String() }

func (c *Client) request(ctx context.Context, method, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base.JoinPath(path).String(), nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return c.http.Do(req)
}

// apiError turns a non-2xx answer into an error with the hub's message.
func apiError(resp *http.Response) error {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&e)
	msg := Clean(e.Error)
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf("hub answered %s: %s (pass a token with --token)", resp.Status, msg)
	case http.StatusForbidden:
		return fmt.Errorf("hub answered %s: your role may not do this", resp.Status)
	}
	return fmt.Errorf("hub answered %s: %s", resp.Status, msg)
}

// Alerts returns the hub's alerts (GET /api/alerts), or ErrNoAlerts when
// the hub has no alert engine.
func (c *Client) Alerts(ctx context.Context) ([]Alert, error) {
	resp, err := c.request(ctx, http.MethodGet, "/api/alerts")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, ErrNoAlerts
	}
	if resp.StatusCode != http.StatusOK {
		return nil, apiError(resp)
	}
	var raw json.RawMessage
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&raw); err != nil {
		return nil, fmt.Errorf("decode alerts: %w", err)
	}
	// A bare array, or an object that wraps it: {"alerts":[…]}.
	var as []Alert
	if err := json.Unmarshal(raw, &as); err != nil {
		var wrapped struct {
			Alerts []Alert `json:"alerts"`
		}
		if json.Unmarshal(raw, &wrapped) != nil {
			return nil, fmt.Errorf("decode alerts: %w", err)
		}
		as = wrapped.Alerts
	}
	return as, nil
}

// Ack acknowledges alert id (POST /api/alerts/{id}/ack).
func (c *Client) Ack(ctx context.Context, id string) error {
	resp, err := c.request(ctx, http.MethodPost, "/api/alerts/"+url.PathEscape(id)+"/ack")
	if err != nil {
		return fmt.Errorf("ack alert %s: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("ack alert %s: %w", Clean(id), apiError(resp))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return nil
}

// machine fetches GET /api/machines/{id}: the machine object with its
// latest values.
func (c *Client) machine(ctx context.Context, id string) ([]byte, error) {
	resp, err := c.request(ctx, http.MethodGet, "/api/machines/"+url.PathEscape(id))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, apiError(resp)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}

// Processes returns machine id's top-process list from GET
// /api/machines/{id}; nil when the hub does not report one.
func (c *Client) Processes(ctx context.Context, id string) ([]Process, error) {
	b, err := c.machine(ctx, id)
	if err != nil {
		return nil, err
	}
	var m struct {
		Processes []Process `json:"processes"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode machine %s: %w", Clean(id), err)
	}
	return m.Processes, nil
}

// Backoff bounds of the reconnect loop.
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// Run keeps the fleet in sync with the hub until ctx ends: it streams the
// WebSocket, reconnecting with exponential backoff and jitter, and polls the
// alerts. It never returns an error because the hub is down; the fleet's
// connection state says so instead.
func (c *Client) Run(ctx context.Context, f *Fleet) error {
	go c.pollAlerts(ctx, f)
	backoff := minBackoff
	for {
		started := time.Now()
		err := c.stream(ctx, f)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(started) > 30*time.Second {
			backoff = minBackoff
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		c.log.Warn("hub connection lost, retrying", "hub", c.base.String(), "err", err, "retry_in", wait)
		f.SetConn(ConnState{Err: shortErr(err), RetryAt: time.Now().Add(wait)})
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// shortErr keeps the useful tail of a network error.
func shortErr(err error) string {
	if err == nil {
		return "connection closed"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i > 0 && len(s) > 60 {
		s = s[i+2:]
	}
	return s
}

// stream runs one WebSocket session in summary mode: a compact snapshot and
// one summary per machine and second, and full metrics only for the machine
// in the detail view (the fleet's focus, see watchFocus). A hub without
// summary mode sends everything, which works too, only slower.
func (c *Client) stream(ctx context.Context, f *Fleet) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends watchFocus
	u := *c.base
	u.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	u.Path = strings.TrimSuffix(u.Path, "/") + "/ws"
	u.RawQuery = "mode=summary"
	h := http.Header{}
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	conn, resp, err := websocket.Dial(dctx, u.String(), &websocket.DialOptions{HTTPHeader: h})
	dcancel()
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			return fmt.Errorf("hub refused the token (401): pass one with --token")
		}
		return err
	}
	defer conn.CloseNow()
	// Reads take no context: with one, the library arms and disarms a
	// cancellation hook for every message (a thousand a second). The
	// connection is closed when ctx ends instead, which ends the read.
	stop := context.AfterFunc(ctx, func() { _ = conn.CloseNow() })
	defer stop()
	conn.SetReadLimit(256 << 20) // the first message is a snapshot of every machine
	c.log.Info("connected to hub", "url", u.String())
	var buf []byte
	first := true
	pause := time.NewTimer(readPause)
	pause.Stop()
	for {
		asked := time.Now()
		typ, r, err := conn.Reader(context.Background())
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		// A message that was not there yet means the stream trickles (a
		// thousand machines send a thousand summaries a second, each its
		// own message); see readPause.
		trickle := !first && time.Since(asked) > time.Millisecond
		if typ == websocket.MessageText {
			buf, err = readInto(buf[:0], r)
			if err != nil {
				return err
			}
			if err := f.HandleMessage(buf); err != nil {
				c.log.Debug("bad message from hub", "err", err)
			}
			if first {
				first = false
				f.SetConn(ConnState{Connected: true})
				if f.SummaryMode() {
					go c.watchFocus(ctx, conn, f)
				}
			}
			if cap(buf) > 1<<20 { // let the snapshot's buffer go
				buf = nil
			}
		}
		if trickle {
			pause.Reset(readPause)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-pause.C:
			}
		}
	}
}

// readPause is how long the stream lets messages gather in the socket after
// one arrived on its own: waking up for each of a thousand messages a
// second costs more CPU than decoding them, while the screen shows data at
// most every --refresh (500 ms) anyway. Messages that gathered are read in
// one go, without waiting.
const readPause = 200 * time.Millisecond

// watchFocus follows the fleet's focus for one connection: the machine in
// the detail view gets {"subscribe":[id]} (and its latest values at once
// from the REST API, so the detail does not wait for the next batch);
// leaving it sends {"subscribe":[]}, back to summaries only. It returns when
// ctx ends or a write fails (the stream then fails too and reconnects).
func (c *Client) watchFocus(ctx context.Context, conn *websocket.Conn, f *Fleet) {
	subscribed := ""
	for {
		if id := f.Focus(); id != subscribed {
			msg, _ := json.Marshal(map[string][]string{"subscribe": nonEmpty(id)})
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := conn.Write(wctx, websocket.MessageText, msg)
			cancel()
			if err != nil {
				c.log.Debug("subscribe", "machine", Clean(id), "err", err)
				return
			}
			subscribed = id
			if id != "" {
				if b, err := c.machine(ctx, id); err != nil {
					c.log.Debug("fetch machine", "machine", Clean(id), "err", err)
				} else if err := f.HandleMachine(b); err != nil {
					c.log.Debug("bad machine from hub", "machine", Clean(id), "err", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-f.FocusChanged():
		}
	}
}

// nonEmpty returns []string{id}, or an empty list for "".
func nonEmpty(id string) []string {
	if id == "" {
		return []string{}
	}
	return []string{id}
}

// readInto appends all of r to buf.
func readInto(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// pollAlerts refreshes the alert list every 15 s (every minute while the
// hub has no alert engine).
func (c *Client) pollAlerts(ctx context.Context, f *Fleet) {
	for {
		wait := 15 * time.Second
		as, err := c.Alerts(ctx)
		switch {
		case errors.Is(err, ErrNoAlerts):
			f.SetAlertsUnavailable(ErrNoAlerts.Error() + " (GET /api/alerts: 404)")
			wait = time.Minute
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			c.log.Debug("fetch alerts", "err", err)
			wait = 5 * time.Second
		default:
			f.SetAlerts(as)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
