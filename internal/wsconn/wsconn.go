// Package wsconn holds what the hub's and the edge's WebSocket servers do
// alike with a client connection: bounded writes and the keepalive ping.
package wsconn

import (
	"context"
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
