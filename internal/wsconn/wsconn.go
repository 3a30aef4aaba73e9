// Package wsconn holds what the hub's and the edge's WebSocket servers do
// alike with a client connection: bounded writes and the keepalive ping.
package wsconn

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// Write writes one text message within timeout; a client that does not take
// it in time gets an error (the caller drops it).
func Write(ctx context.Context, c *websocket.Conn, msg []byte, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.Write(ctx, websocket.MessageText, msg)
}

// Keepalive pings c every interval until ctx ends, and calls cancel when a
// pong does not come back within timeout.
func Keepalive(ctx context.Context, c *websocket.Conn, cancel context.CancelFunc, every, timeout time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, pcancel := context.WithTimeout(ctx, timeout)
		err := c.Ping(pctx)
		pcancel()
		if err != nil {
			cancel()
			return
		}
	}
}

// WriteBuffer wraps w so that a WebSocket connection accepted through it
// writes through a buffer of size bytes instead of the 4 KiB one net/http
// hands over with the hijacked connection, into a Cork. The library
// flushes once per message, so a message that fits leaves in one
// write(2); with 4 KiB, a live metrics event of 100 series (7 KB) took two
// and one of 1,000 series (70 KB) two as well, the first of them only
// 4 KiB. The buffer is the connection's for its lifetime: size bytes per
// client.
func WriteBuffer(w http.ResponseWriter, size int) *Hijack {
	return &Hijack{ResponseWriter: w, size: size}
}

// Hijack is the http.ResponseWriter WriteBuffer returns.
type Hijack struct {
	http.ResponseWriter
	size int
	cork *Cork
}

// Unwrap lets http.ResponseController reach the wrapped writer.
func (h *Hijack) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// Cork returns the connection's Cork once it has been hijacked (nil
// before).
func (h *Hijack) Cork() *Cork { return h.cork }

// Hijack hijacks the wrapped writer's connection and replaces its
// (empty, or flushed first) writer with one of h.size bytes that writes
// into a Cork around the connection.
func (h *Hijack) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("flush before the websocket takes over: %w", err)
	}
	h.cork = &Cork{Conn: conn}
	return h.cork, bufio.NewReadWriter(brw.Reader, bufio.NewWriterSize(h.cork, h.size)), nil
}
