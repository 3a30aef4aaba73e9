package edge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/sysmonstm/sysmonstm/internal/httpjson"
	"github.com/sysmonstm/sysmonstm/internal/wsconn"
)

const (
	// browserReadLimit bounds a browser's message; browsers have nothing to
	// say, what they send is read and ignored.
	browserReadLimit = 4 << 10
	// snapshotMaxAge is how long an encoded browser snapshot is reused while
	// no machine, identity or online state changed; a browser that gets a
	// reused one misses at most that much of value updates, which the next
	// metrics events replace.
	snapshotMaxAge = time.Second
	// snapshotWriteTimeout bounds writing the snapshot to a browser.
	snapshotWriteTimeout = 30 * time.Second
)

// handleWS serves GET /ws to browsers: a snapshot, then the live events.
// Browsers can only listen: their messages are read and ignored. Each has a
// bounded queue that coalesces per machine (live.Subscription); one whose
// socket stops taking data is cut after the write timeout, so a slow
// browser slows neither the publisher nor other browsers.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	if s.ctx.Err() != nil {
		writeError(w, http.StatusServiceUnavailable, "edge shutting down")
		return
	}
	// Reserve the place before the upgrade: concurrent upgrades cannot
	// pass the bound together.
	if s.clients.Add(1) > int64(s.opts.MaxViewers) {
		s.clients.Add(-1)
		s.refusedClients.Add(1)
		s.refusedLog.Do(func() {
			s.log.Warn("browser refused: the edge holds its most viewers", "remote", r.RemoteAddr, "max_viewers", s.opts.MaxViewers)
		})
		w.Header().Set("Retry-After", "30")
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("too many viewers (%d): try again later", s.opts.MaxViewers))
		return
	}
	defer s.clients.Add(-1)
	ew := &httpjson.UpgradeErrors{ResponseWriter: w}
	// Any origin: the stream is public and read-only, carries no
	// credentials, and a reverse proxy often rewrites Host so that a
	// same-host check would refuse the edge's own page.
	c, err := websocket.Accept(ew, r, &websocket.AcceptOptions{OriginPatterns: []string{"*"}})
	if err != nil {
		ew.Finish()
		s.log.Debug("websocket upgrade refused", "remote", r.RemoteAddr, "err", err)
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(browserReadLimit)

	// Subscribe before the snapshot so that no change falls in between.
	sub := s.fan.Subscribe(s.opts.WSQueue)
	defer sub.Close()
	connCtx, cancel := context.WithCancel(context.Background())
	defer cancel()

	snap, err := s.browserSnapshot()
	if err != nil {
		s.log.Error("encode browser snapshot", "err", err)
		_ = c.Close(websocket.StatusInternalError, "internal error")
		return
	}
	// The snapshot may be megabytes for a large fleet: it gets more time.
	if err := wsconn.Write(connCtx, c, snap, max(snapshotWriteTimeout, s.opts.WriteTimeout)); err != nil {
		s.dropIfStuck(err, r, sub.Drop)
		return
	}
	readDone := make(chan error, 1)
	go func() {
		for {
			if _, _, err := c.Read(connCtx); err != nil {
				readDone <- err
				return
			}
		}
	}()
	go wsconn.Keepalive(connCtx, c, cancel, pingEvery, s.opts.WriteTimeout)
	for {
		select {
		case ev, ok := <-sub.C():
			if !ok {
				if sub.Dropped() {
					s.droppedClients.Add(1)
					s.log.Warn("browser too slow, dropped", "remote", r.RemoteAddr)
					_ = c.Close(websocket.StatusTryAgainLater, "too slow: events dropped")
				}
				return
			}
			if err := wsconn.Write(connCtx, c, ev.JSON, s.opts.WriteTimeout); err != nil {
				s.dropIfStuck(err, r, sub.Drop)
				return
			}
		case <-readDone:
			return
		case <-s.ctx.Done():
			_ = c.Close(websocket.StatusGoingAway, "edge shutting down")
			return
		case <-connCtx.Done(): // no pong
			return
		}
	}
}

// dropIfStuck counts a browser whose write timed out as dropped.
func (s *Server) dropIfStuck(err error, r *http.Request, drop func()) {
	if errors.Is(err, context.DeadlineExceeded) {
		s.droppedClients.Add(1)
		s.log.Warn("browser stuck, dropped", "remote", r.RemoteAddr, "timeout", s.opts.WriteTimeout)
		drop()
		return
	}
	s.log.Debug("browser write", "remote", r.RemoteAddr, "err", err)
}

// browserSnapshot returns the encoded browser snapshot, reusing the last one
// while it is recent and nothing structural changed (many browsers opening
// at once cost one encoding).
func (s *Server) browserSnapshot() ([]byte, error) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	if s.snapBytes != nil && s.state.Version() == s.snapVersion && time.Since(s.snapAt) < snapshotMaxAge {
		return s.snapBytes, nil
	}
	b, v, err := s.state.snapshot()
	if err != nil {
		return nil, err
	}
	s.snapBytes, s.snapVersion, s.snapAt = b, v, time.Now()
	return b, nil
}
