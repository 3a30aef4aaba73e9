package netguard

import (
	"bufio"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// holdServer accepts on ln, greets each connection with "ok\n" and keeps it
// until the client closes it.
func holdServer(t *testing.T, ln net.Listener) {
	t.Helper()
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := c.Write([]byte("ok\n")); err != nil {
					return
				}
				buf := make([]byte, 1)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
}

// greeted dials addr and reports whether the server greeted the connection
// (false: it was closed at once). The connection stays open if greeted.
func greeted(t *testing.T, addr string) (net.Conn, bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		c.Close()
		return nil, false
	}
	if line != "ok\n" {
		t.Fatalf("read %q", line)
	}
	t.Cleanup(func() { c.Close() })
	return c, true
}

func TestLimitRefusesConnectionsOverThePerAddressLimit(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	ln := Limit(raw, ListenerOptions{Name: "grpc", MaxPerAddr: 2, Metrics: m})
	holdServer(t, ln)
	addr := raw.Addr().String()

	first, ok := greeted(t, addr)
	if !ok {
		t.Fatal("first connection refused")
	}
	if _, ok := greeted(t, addr); !ok {
		t.Fatal("second connection refused")
	}
	if _, ok := greeted(t, addr); ok {
		t.Fatal("third connection from one address accepted with a limit of 2")
	}
	if got := promtest.ToFloat64(m.rejected.WithLabelValues("grpc", ReasonPerIPLimit)); got != 1 {
		t.Fatalf("rejected_connections_total{grpc,per_ip_limit} = %v, want 1", got)
	}
	// A closed connection gives its slot back.
	first.Close()
	testutil.Until(t, 5*time.Second, "a closed connection's slot given back", func() bool {
		_, ok := greeted(t, addr)
		return ok
	})
}

func TestLimitExemptsListedAddresses(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Limit(raw, ListenerOptions{Name: "http", MaxPerAddr: 1, Exempt: Loopback()})
	holdServer(t, ln)
	for i := range 5 {
		if _, ok := greeted(t, raw.Addr().String()); !ok {
			t.Fatalf("connection %d from an exempt address refused", i+1)
		}
	}
}

func TestLimitOffReturnsTheListener(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if ln := Limit(raw, ListenerOptions{MaxPerAddr: 0}); ln != raw {
		t.Fatal("MaxPerAddr 0 wrapped the listener")
	}
}

func TestPeer(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := Peer(netip.MustParseAddr(in)).String(); got != want {
			t.Errorf("Peer(%s) = %s, want %s", in, got, want)
		}
	}
	f("192.0.2.7", "192.0.2.7")
	f("::ffff:192.0.2.7", "192.0.2.7")
	f("2001:db8:1:2:aaaa::1", "2001:db8:1:2::")
	f("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::")
	f("2001:db8:1:3::1", "2001:db8:1:3::")
	f("fe80::1%eth0", "fe80::")
	f("::1", "::")
}

func TestParsePrefixes(t *testing.T) {
	got, err := ParsePrefixes(" 127.0.0.0/8, ::1 ,10.1.2.3,2001:db8::/32,,10.9.9.9/8")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.0/8", "::1/128", "10.1.2.3/32", "2001:db8::/32", "10.0.0.0/8"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	for _, empty := range []string{"", " none ", ","} {
		if got, err := ParsePrefixes(empty); err != nil || got == nil || len(got) != 0 {
			t.Fatalf(`ParsePrefixes(%q) = %v, %v; want an empty list`, empty, got, err)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0.1/x", "1.2.3", "none,10.0.0.1"} {
		if _, err := ParsePrefixes(bad); err == nil {
			t.Errorf("ParsePrefixes(%q) accepted", bad)
		}
	}
}
