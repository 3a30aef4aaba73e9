package wsconn

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// Writes pass straight through outside Hold; between Hold and Release they
// are held and leave together, in order.
func TestCorkHoldsAndReleasesInOrder(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	got := make(chan []byte, 8)
	go func() {
		buf := make([]byte, 1024)
		for {
			n, err := b.Read(buf)
			if err != nil {
				close(got)
				return
			}
			got <- append([]byte(nil), buf[:n]...)
		}
	}()
	c := &Cork{Conn: a}
	if _, err := c.Write([]byte("one")); err != nil {
		t.Fatal(err)
	}
	if g := <-got; string(g) != "one" {
		t.Fatalf("got %q, want one", g)
	}
	c.Hold()
	for _, s := range []string{"two", "three", "four"} {
		if n, err := c.Write([]byte(s)); err != nil || n != len(s) {
			t.Fatalf("held write: %d, %v", n, err)
		}
	}
	if h := c.Held(); h != len("twothreefour") {
		t.Fatalf("held %d bytes, want 12", h)
	}
	select {
	case g := <-got:
		t.Fatalf("%q left while held", g)
	case <-time.After(50 * time.Millisecond):
	}
	if err := c.Release(time.Second); err != nil {
		t.Fatal(err)
	}
	if g := <-got; string(g) != "twothreefour" {
		t.Fatalf("released %q, want one write of twothreefour", g)
	}
	if err := c.Release(time.Second); err != nil || c.Held() != 0 {
		t.Fatalf("empty release: %v, held %d", err, c.Held())
	}
	if _, err := c.Write([]byte("five")); err != nil {
		t.Fatal(err)
	}
	if g := <-got; string(g) != "five" {
		t.Fatalf("got %q after release, want five", g)
	}
}

// A client that reads nothing makes Release fail with ErrStuck after its
// timeout, and the cork passes writes through again.
func TestCorkReleaseTimesOut(t *testing.T) {
	a, b := net.Pipe() // unbuffered: a write waits for a reader
	defer a.Close()
	defer b.Close()
	c := &Cork{Conn: a}
	c.Hold()
	c.Write([]byte("nobody reads this"))
	if err := c.Release(50 * time.Millisecond); !errors.Is(err, ErrStuck) {
		t.Fatalf("release: %v, want ErrStuck", err)
	}
	go io.Copy(io.Discard, b)
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatalf("write after a timed-out release: %v", err)
	}
}
