package edge

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/sysmonstm/sysmonstm/internal/httpjson"
	"github.com/sysmonstm/sysmonstm/internal/wsconn"
)

// Close codes of the publish connection.
const (
	// StatusReplaced closes a publisher when a newer one authenticated.
	StatusReplaced websocket.StatusCode = 4000
	pingEvery                           = 30 * time.Second
)

// publisher is the connected hub.
type publisher struct {
	conn   *websocket.Conn
	remote string
}

// authorized reports whether r carries the publish key. Both sides are
// hashed first, so the comparison takes the same time whatever the length
// or content of the offered key.
func (s *Server) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	sum := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(sum[:], s.keyHash[:]) == 1 && ok
}

// handlePublish serves GET /api/publish: the WebSocket a hub pushes its
// public stream into. It needs the key; a newer publisher replaces the
// current one. Every message is validated; a bad one is dropped, counted
// and logged (rate limited), and the connection goes on.
func (s *Server) handlePublish(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		s.unauthorized.Add(1)
		s.log.Debug("publish refused: missing or wrong key", "remote", r.RemoteAddr)
		w.Header().Set("WWW-Authenticate", `Bearer realm="sysmonstm edge"`)
		writeError(w, http.StatusUnauthorized, "missing or wrong publish key: send Authorization: Bearer KEY with the edge's --key (the hub's --edge-key)")
		return
	}
	if s.ctx.Err() != nil {
		writeError(w, http.StatusServiceUnavailable, "edge shutting down")
		return
	}
	ew := &httpjson.UpgradeErrors{ResponseWriter: w}
	// The publish link may cross the internet: compress it if the hub asks.
	c, err := websocket.Accept(ew, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionNoContextTakeover})
	if err != nil {
		ew.Finish()
		s.log.Debug("publish upgrade refused", "remote", r.RemoteAddr, "err", err)
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(MaxMessageBytes)
	s.publishers.Add(1)

	id := s.takePublisher(&publisher{conn: c, remote: r.RemoteAddr})
	defer s.releasePublisher(id)
	s.log.Info("publisher connected", "remote", r.RemoteAddr)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.ctx.Done():
			_ = c.Close(websocket.StatusGoingAway, "edge shutting down")
		case <-ctx.Done():
		}
	}()
	go wsconn.Keepalive(ctx, c, cancel, pingEvery, s.opts.WriteTimeout)
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			s.log.Info("publisher disconnected", "remote", r.RemoteAddr, "status", websocket.CloseStatus(err), "err", err)
			return
		}
		if typ != websocket.MessageText {
			s.reject(errors.New("binary message: the publish protocol is JSON text"))
			continue
		}
		s.onPublish(b)
	}
}

// onPublish decodes, validates and applies one publish message, then
// passes its browser events on.
func (s *Server) onPublish(b []byte) {
	var msg pubMessage
	if err := json.Unmarshal(b, &msg); err != nil {
		s.reject(fmt.Errorf("invalid JSON: %w", err))
		return
	}
	evs, err := s.state.apply(&msg)
	if err != nil {
		s.reject(err)
		return
	}
	s.accepted.Add(1)
	for _, ev := range evs {
		s.fan.Publish(ev)
	}
}

// reject counts a bad publish message and logs it, at most a few lines per
// interval.
func (s *Server) reject(err error) {
	n := s.rejected.Add(1)
	s.badLog.Do(func() {
		s.log.Warn("publish message rejected", "err", err, "rejected_total", n)
	})
}

// takePublisher makes p the publisher, closing the previous one.
func (s *Server) takePublisher(p *publisher) uint64 {
	s.pubMu.Lock()
	old := s.pub
	s.pubSeq++
	id := s.pubSeq
	s.pub = p
	s.pubMu.Unlock()
	if old != nil {
		s.log.Warn("publisher replaced by a newer one: is more than one hub configured with this edge?", "old", old.remote, "new", p.remote)
		go func() { _ = old.conn.Close(StatusReplaced, "replaced by a newer publisher") }()
	}
	s.fan.Publish(s.state.setPublisher(true))
	return id
}

// releasePublisher forgets publisher id unless a newer one took over.
func (s *Server) releasePublisher(id uint64) {
	s.pubMu.Lock()
	current := s.pubSeq == id
	if current {
		s.pub = nil
	}
	s.pubMu.Unlock()
	if current {
		s.fan.Publish(s.state.setPublisher(false))
	}
}
