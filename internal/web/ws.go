package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/sysmonstm/sysmonstm/internal/httpjson"
	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/wire"
	"github.com/sysmonstm/sysmonstm/internal/wsconn"
)

const (
	wsWriteTimeout = 5 * time.Second  // one message to a client, else it is cut
	wsPingEvery    = 30 * time.Second // keepalive; a missing pong within wsWriteTimeout ends the client
	wsReadLimit    = 64 << 10         // bytes of one client message
	wsMaxSubscribe = 10_000           // ids in one subscribe message
	// wsWriteBuffer is each client's write buffer, bytes: a metrics event
	// of up to ~1,000 series leaves in one write(2) (wsconn.WriteBuffer).
	wsWriteBuffer = 64 << 10
	// wsMaxBatch bounds the events sent with one write (writeEvents).
	wsMaxBatch = 64
)

// handleWS serves GET /ws: a snapshot of every machine, then the live events.
// With ?mode=summary (a fleet overview such as `sysmonstm top`) the snapshot
// carries each machine's headline values instead of every series, and the
// stream carries summary events instead of metrics, except for the machines
// the client subscribes to. A client that falls behind gets coalesced events
// (the newest per machine, see live.Subscription); one whose socket stops
// taking data is cut after wsWriteTimeout and counted as dropped; one that
// piles up too many events that cannot be coalesced is closed with 1013
// (try again later).
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	if s.ctx.Err() != nil {
		writeError(w, http.StatusServiceUnavailable, "hub shutting down")
		return
	}
	var summary bool
	switch mode := r.URL.Query().Get("mode"); mode {
	case "", wire.ModeFull:
	case wire.ModeSummary:
		summary = true
	default:
		writeError(w, http.StatusBadRequest, `invalid mode: want "full" (the default) or "summary"`)
		return
	}
	ew := &httpjson.UpgradeErrors{ResponseWriter: w}
	// Default origin check: same host, or no Origin header (non-browser
	// clients).
	hj := wsconn.WriteBuffer(ew, wsWriteBuffer)
	c, err := websocket.Accept(hj, r, nil)
	if err != nil {
		ew.Finish()
		s.log.Debug("websocket upgrade refused", "remote", r.RemoteAddr, "err", err)
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(wsReadLimit)
	s.wsClients.Inc()
	defer s.wsClients.Dec()

	// Subscribe before the snapshot so that nothing falls in between.
	var sub *live.Subscription
	if summary {
		sub = s.opts.Live.SubscribeSummary(s.opts.WSQueue)
	} else {
		sub = s.opts.Live.Subscribe(s.opts.WSQueue)
	}
	defer sub.Close()

	// connCtx bounds reads, pings and writes. It is not derived from s.ctx:
	// an expired context makes the library drop the connection, and on
	// shutdown the client should get a proper 1001 close instead.
	connCtx, cancel := context.WithCancel(context.Background())
	defer cancel()

	snap, err := encodeSnapshot(s.opts.Live, summary)
	if err != nil {
		s.log.Error("encode websocket snapshot", "err", err)
		_ = c.Close(websocket.StatusInternalError, "internal error")
		return
	}
	if err := wsconn.Write(connCtx, c, snap, wsWriteTimeout); err != nil {
		s.log.Debug("websocket snapshot write", "remote", r.RemoteAddr, "err", err)
		return
	}

	replies := make(chan []byte, 4)
	readDone := make(chan error, 1)
	go func() { readDone <- s.readWS(connCtx, c, sub, replies) }()
	go wsconn.Keepalive(connCtx, c, cancel, wsPingEvery, wsWriteTimeout)

	for {
		select {
		case ev, ok := <-sub.C():
			if !ok {
				if sub.Dropped() {
					s.log.Warn("websocket client too slow, dropped", "remote", r.RemoteAddr)
					_ = c.Close(websocket.StatusTryAgainLater, "client too slow: events dropped")
				}
				return
			}
			if err := s.writeEvents(connCtx, c, hj.Cork(), sub, ev); err != nil {
				if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, wsconn.ErrStuck) {
					s.log.Warn("websocket client stuck, dropped", "remote", r.RemoteAddr, "timeout", wsWriteTimeout)
					sub.Drop()
					return
				}
				s.log.Debug("websocket write", "remote", r.RemoteAddr, "err", err)
				return
			}
		case msg := <-replies:
			if err := wsconn.Write(connCtx, c, msg, wsWriteTimeout); err != nil {
				return
			}
		case err := <-readDone:
			s.log.Debug("websocket client gone", "remote", r.RemoteAddr, "status", websocket.CloseStatus(err))
			return
		case <-s.ctx.Done():
			_ = c.Close(websocket.StatusGoingAway, "hub shutting down")
			return
		case <-connCtx.Done(): // no pong
			return
		}
	}
}

// writeEvents writes ev and, while more events wait in sub's queue, the
// next ones, up to wsWriteBuffer bytes, held in the connection's cork and
// sent with one write(2): a burst (every machine's batch of a tick) costs
// a write per 64 KiB instead of one per event. Order and contents are the
// queue's. It observes the websocket stage of sysmonstm_live_delay_seconds
// for each metrics event once it is written.
func (s *Server) writeEvents(ctx context.Context, c *websocket.Conn, cork *wsconn.Cork, sub *live.Subscription, ev live.Event) error {
	var at [wsMaxBatch]time.Time
	n := 0
	batch := len(sub.C()) > 0
	if batch {
		cork.Hold()
	}
	for {
		if err := wsconn.Write(ctx, c, ev.JSON, wsWriteTimeout); err != nil {
			if batch {
				_ = cork.Release(wsWriteTimeout)
			}
			return err // ev not released: the collector takes it
		}
		// The library has copied the message (into the cork or the
		// socket): its buffer can serve a later event.
		ev.Release()
		at[n] = ev.At
		n++
		if !batch || n == wsMaxBatch || cork.Held() >= wsWriteBuffer || len(sub.C()) == 0 {
			break
		}
		var ok bool
		if ev, ok = <-sub.C(); !ok { // cannot happen while len > 0; be safe
			break
		}
	}
	if batch {
		if err := cork.Release(wsWriteTimeout); err != nil {
			return err
		}
	}
	now := s.now()
	for _, t := range at[:n] {
		if !t.IsZero() {
			s.liveDelay.Observe(now.Sub(t).Seconds())
		}
	}
	return nil
}

// encodeSnapshot builds the first message: {"type":"snapshot","machines":[…]}
// with every machine's latest values, or in summary mode
// {"type":"snapshot","mode":"summary","machines":[…]} with each machine's
// headline values.
func encodeSnapshot(l *live.State, summary bool) ([]byte, error) {
	if summary {
		ms := l.Summaries()
		if ms == nil {
			ms = []live.MachineSummary{}
		}
		return json.Marshal(struct {
			Type     string                `json:"type"`
			Mode     string                `json:"mode"`
			Machines []live.MachineSummary `json:"machines"`
		}{wire.TypeSnapshot, wire.ModeSummary, ms})
	}
	return json.Marshal(struct {
		Type     string         `json:"type"`
		Machines []live.Machine `json:"machines"`
	}{wire.TypeSnapshot, nonNil(l.Machines())})
}

// encodeError builds {"type":"error","error":"…"}, the answer to an
// invalid client message.
func encodeError(err error) []byte {
	b, _ := json.Marshal(wire.Error{Type: wire.TypeError, Error: err.Error()}) // cannot fail: two strings
	return b
}

func nonNil(ms []live.Machine) []live.Machine {
	if ms == nil {
		return []live.Machine{}
	}
	return ms
}

// readWS reads client messages until the connection ends. A valid subscribe
// narrows the metrics events; anything else gets an error message back.
func (s *Server) readWS(ctx context.Context, c *websocket.Conn, sub *live.Subscription, replies chan<- []byte) error {
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			return err
		}
		if typ != websocket.MessageText {
			_ = c.Close(websocket.StatusUnsupportedData, "send JSON text messages")
			return errors.New("binary message from client")
		}
		ids, ok, err := decodeClientMessage(b)
		if err != nil {
			msg := encodeError(err)
			select {
			case replies <- msg:
			default: // a client flooding bad messages gets fewer answers
			}
			continue
		}
		if ok {
			sub.SetMachines(ids)
		}
	}
}

// decodeClientMessage reads a client message. {"subscribe":[ids]} narrows
// metrics and processes events to those machines; an empty list or null
// means every machine (none in summary mode). ok is false for a valid message with nothing to do (unknown
// fields are ignored, for newer clients).
func decodeClientMessage(b []byte) (ids []string, ok bool, err error) {
	var m struct {
		Subscribe json.RawMessage `json:"subscribe"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, false, errors.New(`invalid message: expected a JSON object like {"subscribe":["machine-id"]}`)
	}
	if m.Subscribe == nil {
		return nil, false, nil
	}
	if bytes.Equal(m.Subscribe, []byte("null")) {
		return []string{}, true, nil
	}
	if err := json.Unmarshal(m.Subscribe, &ids); err != nil {
		return nil, false, errors.New("invalid subscribe: expected an array of machine id strings")
	}
	if len(ids) > wsMaxSubscribe {
		return nil, false, fmt.Errorf("invalid subscribe: %d ids, limit %d", len(ids), wsMaxSubscribe)
	}
	for _, id := range ids {
		if len(id) > metric.MaxMachineIDLength {
			return nil, false, fmt.Errorf("invalid subscribe: machine id longer than %d bytes", metric.MaxMachineIDLength)
		}
	}
	if ids == nil {
		ids = []string{}
	}
	return ids, true, nil
}
