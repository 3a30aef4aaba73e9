package netguard

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Loopback is the default exemption from the per-address limit: every
// client of a reverse proxy or of loadgen on the hub's host shares it.
func Loopback() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
}

// ListenerOptions configure Limit.
type ListenerOptions struct {
	// Name labels the listener in metrics and logs ("http", "grpc").
	Name string
	// MaxPerAddr is how many connections one client address (one IPv4
	// address, or one IPv6 /64) may hold open at once; a further one is
	// closed as soon as it is accepted. 0 or less: no limit.
	MaxPerAddr int
	// Exempt lists client addresses never limited.
	Exempt  []netip.Prefix
	Metrics *Metrics
	Logger  *slog.Logger
}

// Limit returns ln limited to opts.MaxPerAddr open connections per client
// address. Connections from exempt or non-IP addresses pass unwrapped.
func Limit(ln net.Listener, opts ListenerOptions) net.Listener {
	if opts.MaxPerAddr <= 0 {
		return ln
	}
	return &limitListener{
		Listener: ln,
		opts:     opts,
		log:      newOnceLog(opts.Logger, time.Minute),
		open:     map[netip.Addr]int{},
	}
}

// limitListener counts open connections per client address. mu protects
// open, whose keys are the addresses with at least one open connection
// (so its size is bounded by the open connections).
type limitListener struct {
	net.Listener
	opts ListenerOptions
	log  *onceLog

	mu   sync.Mutex
	open map[netip.Addr]int
}

// Accept returns the next connection within the limit; connections over
// it are closed and counted here, and Accept waits for the next one.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip, ok := addrOf(c.RemoteAddr())
		if !ok || exempt(l.opts.Exempt, ip) {
			return c, nil
		}
		key := Peer(ip)
		l.mu.Lock()
		n := l.open[key]
		if n >= l.opts.MaxPerAddr {
			l.mu.Unlock()
			l.opts.Metrics.reject(l.opts.Name, ReasonPerIPLimit) // counted before the client can see it
			_ = c.Close()
			l.log.warn(key.String(), "connection refused: too many open connections from one address",
				"listener", l.opts.Name, "remote", key, "limit", l.opts.MaxPerAddr)
			continue
		}
		l.open[key] = n + 1
		l.mu.Unlock()
		return &limitedConn{Conn: c, l: l, key: key}, nil
	}
}

func (l *limitListener) release(key netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key] <= 1 {
		delete(l.open, key)
		return
	}
	l.open[key]--
}

// limitedConn gives its slot back when closed, once.
type limitedConn struct {
	net.Conn
	l    *limitListener
	key  netip.Addr
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.key) })
	return err
}

// CloseWrite half-closes the connection where the underlying one can (TCP):
// net/http does so before closing a connection after an error answer, so
// the client reads the answer instead of a reset.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// addrOf is the IP address of a TCP or UDP address, IPv4-mapped IPv6
// addresses unmapped; ok is false for other kinds (unix sockets).
func addrOf(a net.Addr) (netip.Addr, bool) {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		if a == nil {
			return netip.Addr{}, false
		}
		p, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return netip.Addr{}, false
		}
		ap = p
	}
	ip := ap.Addr().Unmap()
	return ip, ip.IsValid()
}

// Peer is the key one client's connections count under: an IPv4 address
// itself, an IPv6 address's /64 (one subscriber's usual assignment, so
// changing addresses within it gains nothing).
func Peer(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if ip.Is6() {
		p, err := ip.Prefix(64)
		if err == nil {
			return p.Addr()
		}
	}
	return ip.WithZone("")
}

// PeerOf is Peer of a connection's remote address; ok is false for non-IP
// addresses.
func PeerOf(a net.Addr) (netip.Addr, bool) {
	ip, ok := addrOf(a)
	if !ok {
		return netip.Addr{}, false
	}
	return Peer(ip), true
}

func exempt(list []netip.Prefix, ip netip.Addr) bool {
	for _, p := range list {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ParsePrefixes parses a comma-separated list of CIDR prefixes or single
// addresses ("127.0.0.0/8, ::1, 10.1.2.3"); an empty string or "none" is
// an empty list (an empty environment variable counts as unset).
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	out := []netip.Prefix{}
	if strings.TrimSpace(s) == "none" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if strings.Contains(part, "/") {
			p, err := netip.ParsePrefix(part)
			if err != nil {
				return nil, fmt.Errorf("%q: want an address or a CIDR prefix such as 10.0.0.0/8", part)
			}
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("%q: want an address or a CIDR prefix such as 10.0.0.0/8", part)
		}
		ip = ip.Unmap().WithZone("")
		out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return out, nil
}
