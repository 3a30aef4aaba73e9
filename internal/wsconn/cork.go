package wsconn

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// ErrStuck is returned by Cork.Release when the held bytes could not be
// written within its timeout: the client stopped taking data.
var ErrStuck = errors.New("client took no data within the write timeout")

// maxKept bounds the held buffer's capacity kept between bursts, bytes.
const maxKept = 256 << 10

// Cork is a connection whose writes can be held and sent together: the
// WebSocket library flushes every message, so a burst of queued events
// would otherwise cost one write(2) each. Between Hold and Release every
// write is appended to a buffer (messages and control frames alike, in the
// order the library writes them); Release sends it in one write. Outside
// Hold, writes go straight to the connection.
type Cork struct {
	net.Conn
	mu   sync.Mutex // protects held and buf; held across Release's write so that order is kept
	held bool
	buf  []byte
}

// Write sends p, or appends it while the cork is held.
func (c *Cork) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.held {
		c.buf = append(c.buf, p...)
		c.mu.Unlock()
		return len(p), nil
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// Hold starts holding writes.
func (c *Cork) Hold() {
	c.mu.Lock()
	c.held = true
	c.mu.Unlock()
}

// Held returns the bytes held so far.
func (c *Cork) Held() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.buf)
}

// Release stops holding and writes what was held, within timeout; a
// client that takes none of it in time gets ErrStuck.
func (c *Cork) Release(timeout time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = false
	if len(c.buf) == 0 {
		return nil
	}
	b := c.buf
	c.buf = c.buf[:0]
	if cap(c.buf) > maxKept {
		c.buf = nil // a rare large burst: do not keep its buffer for the connection's life
	}
	if err := c.Conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	_, err := c.Conn.Write(b)
	if derr := c.Conn.SetWriteDeadline(time.Time{}); err == nil {
		err = derr
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return ErrStuck
	}
	return err
}
