package testutil

import (
	"context"
	"net"
	"sync"
)

// PipeListener is a net.Listener whose connections are in-memory net.Pipe
// pairs made by Dial. Servers and clients on it block only on channels,
// which testing/synctest counts as durably blocked, so a test inside a
// bubble can serve HTTP and WebSocket on it and let fake time run its
// write timeouts; a loopback TCP socket would stop the bubble's clock. A
// net.Pipe has no buffer: a peer that reads nothing stalls the first
// write, as a full socket buffer does after a while.
type PipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once // guards closing done
}

// NewPipeListener returns a listener ready for Accept and Dial.
func NewPipeListener() *PipeListener {
	return &PipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept waits for the next Dial, or fails once the listener is closed.
func (l *PipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close makes Accept and Dial fail; open connections stay open.
func (l *PipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr is a placeholder address: the listener has no network address.
func (l *PipeListener) Addr() net.Addr { return pipeAddr{} }

// Dial connects to the listener; its signature fits
// http.Transport.DialContext, whose network and address it ignores.
func (l *PipeListener) Dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		client.Close()
		server.Close()
		return nil, net.ErrClosed
	case <-ctx.Done():
		client.Close()
		server.Close()
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
