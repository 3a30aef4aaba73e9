package netguard

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"time"
)

// BodyOptions configure BodyTimeout.
type BodyOptions struct {
	// Timeout is how long a request body may take to arrive, counted from
	// the end of its headers; 0 or less: no deadline.
	Timeout time.Duration
	Metrics *Metrics
	Logger  *slog.Logger
}

// BodyTimeout gives every request body at most opts.Timeout to arrive:
// past it, reads of the body fail (the handler answers with an error, if
// it still can) and the connection is closed. Requests without a body —
// every GET, WebSocket upgrades included — get no deadline, and net/http
// clears it once a body is read to its end, so a long answer after a
// complete body is not cut. h must be the server's handler itself (the
// deadline is set on the connection through its ResponseWriter).
func BodyTimeout(h http.Handler, opts BodyOptions) http.Handler {
	if opts.Timeout <= 0 {
		return h
	}
	log := newOnceLog(opts.Logger, time.Minute)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(opts.Timeout)); err != nil {
			// Only a wrapped writer says so; serve rather than refuse.
			h.ServeHTTP(w, r)
			return
		}
		r.Body = &deadlineBody{ReadCloser: r.Body, timeout: opts.Timeout, m: opts.Metrics, log: log, remote: r.RemoteAddr}
		h.ServeHTTP(w, r)
	})
}

// deadlineBody is a request body under a read deadline. Like any request
// body it is read by one goroutine at a time; its fields need no lock.
type deadlineBody struct {
	io.ReadCloser
	timeout time.Duration
	m       *Metrics
	log     *onceLog
	remote  string

	counted bool // the timeout is counted
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if !b.counted {
			b.counted = true
			b.m.reject("http", ReasonBodyTimeout)
			b.log.warn(hostOf(b.remote), "request body too slow; closing the connection", "remote", b.remote, "timeout", b.timeout)
		}
		err = fmt.Errorf("request body not received within %s: %w", b.timeout, err)
	}
	return n, err
}

// hostOf is the client key of a HOST:PORT address, for logging once per
// client.
func hostOf(addr string) string {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return Peer(ap.Addr()).String()
	}
	return addr
}
