package edge

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sysmonstm/sysmonstm/internal/config"
	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/wire"
)

// Source is the hub's live state as the forwarder reads it; *live.State
// satisfies it.
type Source interface {
	Subscribe(queue int) *live.Subscription
	Machines() []live.Machine
}

// ForwarderOptions configures a Forwarder. URL, Key and Source are
// required.
type ForwarderOptions struct {
	// URL is the edge's publish endpoint, wss://HOST/api/publish; ws:// only
	// to a loopback host (the key must not travel in clear text).
	URL string
	// Key is the edge's publish key (at least MinKeyLength bytes), sent as
	// Authorization: Bearer on the upgrade request.
	Key    string
	Source Source
	// Machines selects the public machines by id; Metrics the public
	// series; MachineLabels the machine labels (agent --labels) that go
	// along. Nothing else about a machine leaves the hub.
	Machines      Globs
	Metrics       Selectors
	MachineLabels Globs
	// TLSConfig verifies a wss:// edge; nil uses the system roots.
	TLSConfig *tls.Config
	// Queue is the live subscription's queue length; default 1024. Past it
	// events are coalesced per machine (see live.Subscription).
	Queue int
	// WriteTimeout bounds one message to the edge; on expiry the forwarder
	// reconnects with a fresh snapshot. Default 10s.
	WriteTimeout time.Duration
	// DialTimeout bounds connecting and the upgrade; default 10s.
	DialTimeout time.Duration
	// DialContext opens the connection to the edge; nil dials TCP (as
	// net.Dialer does). Tests pass an in-memory listener's Dial.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// MinBackoff and MaxBackoff bound the full-jitter reconnect delay;
	// defaults 0.5s and 30s.
	MinBackoff, MaxBackoff time.Duration
	UserAgent              string
	Logger                 *slog.Logger
	// Registerer receives the sysmonstm_edge_* metrics; nil registers
	// nothing.
	Registerer prometheus.Registerer
}

// Forwarder pushes the hub's public live view to an edge: on each
// connection a snapshot of every public machine, then the live events,
// filtered on the hub so private data never leaves. It reads the live state
// through a bounded, coalescing subscription, so a slow or stuck edge never
// slows the hub: its events coalesce, and a connection that stops taking
// data is dropped and made again.
type Forwarder struct {
	opts   ForwarderOptions
	log    *slog.Logger
	client *http.Client

	connected  prometheus.Gauge
	messages   *prometheus.CounterVec // by type
	bytes      prometheus.Counter
	reconnects *prometheus.CounterVec // by reason
	dropped    prometheus.Counter
}

// errKeyRejected is a 401 from the edge.
var errKeyRejected = errors.New("the edge rejected the publish key (401): --edge-key must equal the edge's --key")

// NewForwarder checks opts and registers the forwarder's metrics.
func NewForwarder(opts ForwarderOptions) (*Forwarder, error) {
	if opts.Source == nil {
		return nil, errors.New("edge: ForwarderOptions.Source is required")
	}
	if err := checkEdgeURL(opts.URL); err != nil {
		return nil, err
	}
	if opts.Key == "" {
		return nil, &config.SettingError{Setting: "edge-key",
			Reason: fmt.Sprintf("the edge's publish key is required and has at least %d characters (set {edge-key} or SYSMONSTM_EDGE_KEY)", MinKeyLength)}
	}
	if err := ValidateKey(opts.Key); err != nil {
		return nil, keyError("edge-key", err)
	}
	if opts.Queue <= 0 {
		opts.Queue = 1024
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 10 * time.Second
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 500 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "sysmonstm-hub"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Forwarder{
		opts: opts,
		log:  opts.Logger,
		client: &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			TLSClientConfig:     opts.TLSConfig,
			TLSHandshakeTimeout: opts.DialTimeout,
			DialContext:         opts.DialContext,
		}},
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sysmonstm_edge_connected",
			Help: "1 while the forwarder's WebSocket to the edge (--edge-url) is open, else 0.",
		}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sysmonstm_edge_messages_total",
			Help: "Messages sent to the edge, by type (snapshot parts, metrics, machine, remove).",
		}, []string{"type"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sysmonstm_edge_sent_bytes_total",
			Help: "Bytes of messages sent to the edge (before WebSocket compression).",
		}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sysmonstm_edge_reconnects_total",
			Help: "Edge connections lost or attempts failed, by reason: dial, rejected (wrong key), write (timeout or error), slow (fell behind), closed (by the edge).",
		}, []string{"reason"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sysmonstm_edge_dropped_messages_total",
			Help: "Live events not forwarded because the edge connection failed or fell behind (the edge gets a fresh snapshot on reconnect).",
		}),
	}
	for _, r := range []string{"dial", "rejected", "write", "slow", "closed"} {
		f.reconnects.WithLabelValues(r)
	}
	for _, t := range []string{typeSnapshot, typeMetrics, typeMachine, typeRemove} {
		f.messages.WithLabelValues(t)
	}
	if r := opts.Registerer; r != nil {
		for _, c := range []prometheus.Collector{f.connected, f.messages, f.bytes, f.reconnects, f.dropped} {
			if err := r.Register(c); err != nil {
				return nil, fmt.Errorf("register edge metrics: %w", err)
			}
		}
	}
	return f, nil
}

// checkEdgeURL accepts wss://HOST/… and ws://LOOPBACK/….
func checkEdgeURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return &config.SettingError{Setting: "edge-url", Value: fmt.Sprintf("%q", s), Reason: "want wss://HOST/api/publish"}
	}
	switch u.Scheme {
	case "wss":
		return nil
	case "ws":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
			return nil
		}
		return &config.SettingError{Setting: "edge-url", Value: fmt.Sprintf("%q", s),
			Reason: "ws:// would send the key and the data in clear text; use wss:// (ws:// is for loopback only)"}
	}
	return &config.SettingError{Setting: "edge-url", Value: fmt.Sprintf("%q", s), Reason: "scheme must be wss:// (or ws:// to loopback)"}
}

// Run connects and forwards until ctx is done, reconnecting with full-jitter
// backoff (MinBackoff doubling up to MaxBackoff; reset after a connection
// that lasted a minute). It returns nil when ctx ends.
func (f *Forwarder) Run(ctx context.Context) error {
	attempt := 0
	for {
		start := time.Now()
		reason, err := f.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		f.reconnects.WithLabelValues(reason).Inc()
		if time.Since(start) > time.Minute && reason != "dial" && reason != "rejected" {
			attempt = 0
		}
		ceiling := f.opts.MaxBackoff
		if attempt < 16 {
			ceiling = min(f.opts.MaxBackoff, f.opts.MinBackoff<<attempt)
		}
		attempt++
		delay := time.Duration(rand.Int64N(int64(ceiling) + 1))
		if errors.Is(err, errKeyRejected) {
			f.log.Error("edge forwarding", "url", f.opts.URL, "err", err, "retry_in", delay.Round(time.Millisecond))
		} else {
			f.log.Warn("edge forwarding interrupted", "url", f.opts.URL, "reason", reason, "err", err, "retry_in", delay.Round(time.Millisecond))
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// session is one connection: dial, snapshot, live events until something
// fails. It returns the reason for the reconnects metric.
func (f *Forwarder) session(ctx context.Context) (string, error) {
	dctx, cancel := context.WithTimeout(ctx, f.opts.DialTimeout)
	c, resp, err := websocket.Dial(dctx, f.opts.URL, &websocket.DialOptions{
		HTTPClient:      f.client,
		HTTPHeader:      http.Header{"Authorization": {"Bearer " + f.opts.Key}, "User-Agent": {f.opts.UserAgent}},
		CompressionMode: websocket.CompressionNoContextTakeover,
	})
	cancel()
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			return "rejected", errKeyRejected
		}
		return "dial", err
	}
	defer c.CloseNow()
	f.connected.Set(1)
	defer f.connected.Set(0)
	// The edge sends nothing but control frames: CloseRead answers pings
	// and reports the edge closing the connection.
	c.SetReadLimit(4 << 10)
	edgeGone := c.CloseRead(context.Background())

	sub := f.opts.Source.Subscribe(f.opts.Queue)
	defer func() {
		f.dropped.Add(float64(len(sub.C())))
		sub.Close()
	}()
	public := map[string]bool{} // machine id → public, cached for the session
	if err := f.sendSnapshot(ctx, c, public); err != nil {
		return "write", fmt.Errorf("send snapshot: %w", err)
	}
	f.log.Info("edge forwarding connected", "url", f.opts.URL)

	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	for {
		select {
		case ev, ok := <-sub.C():
			if !ok {
				return "slow", errors.New("the edge fell too far behind the live stream")
			}
			msg, typ := f.filterEvent(ev, public)
			ev.Release() // filterEvent decoded it into msg, a new message
			if msg == nil {
				continue
			}
			if err := f.write(ctx, c, msg, typ); err != nil {
				f.dropped.Inc()
				return "write", err
			}
		case <-ping.C:
			pctx, pcancel := context.WithTimeout(ctx, f.opts.WriteTimeout)
			err := c.Ping(pctx)
			pcancel()
			if err != nil {
				return "write", fmt.Errorf("ping: %w", err)
			}
		case <-edgeGone.Done():
			return "closed", errors.New("the edge closed the connection")
		case <-ctx.Done():
			_ = c.Close(websocket.StatusGoingAway, "hub shutting down")
			return "closed", ctx.Err()
		}
	}
}

// write sends one message within the write timeout.
func (f *Forwarder) write(ctx context.Context, c *websocket.Conn, msg []byte, typ string) error {
	wctx, cancel := context.WithTimeout(ctx, f.opts.WriteTimeout)
	defer cancel()
	if err := c.Write(wctx, websocket.MessageText, msg); err != nil {
		return err
	}
	f.messages.WithLabelValues(typ).Inc()
	f.bytes.Add(float64(len(msg)))
	return nil
}

// sendSnapshot sends every public machine with its public latest values, in
// parts of about snapshotPartBytes; the last part says so. It records in
// public which machines it saw are public.
func (f *Forwarder) sendSnapshot(ctx context.Context, c *websocket.Conn, public map[string]bool) error {
	var items [][]byte
	for _, m := range f.opts.Source.Machines() {
		ok := f.opts.Machines.Match(m.Info.ID) && metric.ValidateMachineID(m.Info.ID) == nil
		public[m.Info.ID] = ok
		if !ok {
			continue
		}
		wm := f.publicMachine(m.Info.ID, m.Info.Labels.Get, labelNames(m.Info.Labels), m.Online, m.LastSeen)
		for _, v := range m.Metrics {
			if len(wm.Metrics) == MaxSeriesPerMachine {
				break
			}
			if !f.opts.Metrics.Match(v.Name, v.Labels.Get) || checkTs(v.Ts) != nil {
				continue
			}
			ls := v.Labels.Map()
			val := v.Value
			if checkSeries(v.Name, ls) != nil || checkValue(v.Name, &val) != nil {
				continue
			}
			wm.Metrics = append(wm.Metrics, wireValue{Name: v.Name, Labels: ls, Value: &val, Ts: v.Ts})
		}
		b, err := json.Marshal(wm)
		if err != nil {
			return err
		}
		items = append(items, b)
	}
	part, size := 0, 0
	var buf bytes.Buffer
	flush := func(last bool) error {
		buf.WriteString(`],"last":`)
		fmt.Fprint(&buf, last)
		buf.WriteByte('}')
		err := f.write(ctx, c, buf.Bytes(), typeSnapshot)
		buf.Reset()
		part++
		size = 0
		return err
	}
	start := func() { fmt.Fprintf(&buf, `{"type":"snapshot","part":%d,"machines":[`, part) }
	start()
	for i, b := range items {
		if size > 0 && size+len(b) > snapshotPartBytes {
			if err := flush(false); err != nil {
				return err
			}
			start()
		}
		if size > 0 {
			buf.WriteByte(',')
		}
		buf.Write(b)
		size += len(b) + 1
		items[i] = nil
	}
	return flush(true)
}

// publicMachine is the part of a machine that leaves the hub: id, the
// labels MachineLabels picks (within the edge's limits), online state and
// last_seen.
func (f *Forwarder) publicMachine(id string, label func(string) string, names []string, online bool, lastSeen time.Time) wireMachine {
	wm := wireMachine{ID: id, Labels: map[string]string{}, Online: online}
	if !lastSeen.IsZero() {
		ls := lastSeen.UTC()
		wm.LastSeen = &ls
	}
	for _, n := range names {
		if len(wm.Labels) == MaxMachineLabels {
			break
		}
		if !f.opts.MachineLabels.Match(n) {
			continue
		}
		one := map[string]string{n: label(n)}
		if checkLabels("machine", one, 1) == nil {
			wm.Labels[n] = label(n)
		}
	}
	return wm
}

// labelNames returns the names of ls (sorted, as ls is).
func labelNames(ls metric.Labels) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Name
	}
	return out
}

// filterEvent turns a live event (read as internal/wire defines it) into
// the public message for the edge, or nil when nothing of it is public.
// public caches the machine filter.
func (f *Forwarder) filterEvent(ev live.Event, public map[string]bool) ([]byte, string) {
	if ev.Type != live.EventMetrics && ev.Type != live.EventMachine {
		return nil, "" // processes, alerts and the rest stay on the hub
	}
	ok, known := public[ev.Machine]
	if !known {
		ok = f.opts.Machines.Match(ev.Machine) && metric.ValidateMachineID(ev.Machine) == nil
		if len(public) > 100_000 {
			clear(public) // machine churn: start over rather than grow
		}
		public[ev.Machine] = ok
	}
	if !ok {
		return nil, ""
	}
	if ev.Type == live.EventMachine {
		var hm wire.MachineEvent
		if err := json.Unmarshal(ev.JSON, &hm); err != nil || hm.Machine.ID != ev.Machine {
			return nil, ""
		}
		if hm.Forgotten { // the edge drops it, as the hub did
			return removeEvent(ev.Machine).JSON, typeRemove
		}
		var lastSeen time.Time
		if hm.Machine.LastSeen != nil {
			lastSeen = *hm.Machine.LastSeen
		}
		names := sortedKeys(hm.Machine.Labels)
		wm := f.publicMachine(ev.Machine, func(n string) string { return hm.Machine.Labels[n] }, names, hm.Machine.Online, lastSeen)
		b, err := json.Marshal(struct {
			Type    string      `json:"type"`
			Machine wireMachine `json:"machine"`
		}{typeMachine, wm})
		if err != nil {
			return nil, ""
		}
		return b, typeMachine
	}
	var hm wire.Metrics
	if err := json.Unmarshal(ev.JSON, &hm); err != nil || checkTs(hm.Ts) != nil {
		return nil, ""
	}
	out := make([]wireValue, 0, 16)
	for _, v := range hm.Metrics {
		if len(out) == MaxSeriesPerMachine {
			break
		}
		if v.Value == nil || !f.opts.Metrics.MatchName(v.Name) {
			continue
		}
		ls := v.Labels
		if !f.opts.Metrics.Match(v.Name, func(n string) string { return ls[n] }) {
			continue
		}
		if checkSeries(v.Name, ls) != nil || checkValue(v.Name, v.Value) != nil {
			continue
		}
		out = append(out, wireValue{Name: v.Name, Labels: nonNilMap(ls), Value: v.Value})
	}
	if len(out) == 0 {
		return nil, ""
	}
	b, err := json.Marshal(struct {
		Type    string      `json:"type"`
		Machine string      `json:"machine"`
		Ts      int64       `json:"ts"`
		Metrics []wireValue `json:"metrics"`
	}{typeMetrics, ev.Machine, hm.Ts, out})
	if err != nil {
		return nil, ""
	}
	return b, typeMetrics
}
