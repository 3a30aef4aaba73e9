package agent

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Resolver looks up the addresses of a hub's host name; *net.Resolver is
// one. The agent asks it again before each connection attempt, so a DNS
// name that lists several hubs follows changes to its records.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// Timers of an agent with several hubs (more than one address configured
// or resolved): a hub that dies without a TCP reset is noticed within
// interval + FailoverAckTimeout + FailoverAckTimeout/8 while batches flow,
// and the next hub is reached within the reconnect jitter (at most
// backoffBase) plus its connection time, bounded by FailoverConnectTimeout.
const (
	// FailoverAckTimeout breaks a stream whose oldest in-flight batch has
	// no ack for this long when other hubs could take it (one hub: 30 s).
	FailoverAckTimeout = 2 * time.Second
	// FailoverConnectTimeout bounds connecting, hello and welcome with
	// several hubs (one hub: 10 s).
	FailoverConnectTimeout = 3 * time.Second
	// FailoverStableAfter: with several hubs, a stream that lived this
	// long resets the reconnect backoff (one hub: 30 s), so the next
	// failover waits at most backoffBase again, however soon it follows
	// the last one. A hub that ends streams sooner is backed off from.
	FailoverStableAfter = time.Second
	// hubCooldown is how long a hub whose stream failed is passed over
	// while other hubs have not failed as recently.
	hubCooldown = 30 * time.Second
	// resolveTimeout bounds one DNS lookup of a hub name.
	resolveTimeout = 2 * time.Second
)

// HubAddrError is an invalid hub list or entry of one.
type HubAddrError struct {
	Addr   string // the entry at fault, or the whole list
	Reason string
}

func (e *HubAddrError) Error() string { return fmt.Sprintf("hub address %q: %s", e.Addr, e.Reason) }

// ParseHubs splits a hub list, "host:port" or "a:50051,b:50051,…", into
// its addresses. Each must be HOST:PORT with a port from 1 to 65535; a host
// may be an IP address or a DNS name (which may resolve to several hubs).
// Empty entries and repeats are errors (*HubAddrError).
func ParseHubs(list string) ([]string, error) {
	if strings.TrimSpace(list) == "" {
		return nil, &HubAddrError{Addr: list, Reason: "empty: want HOST:PORT[,HOST:PORT…], e.g. 127.0.0.1:50051"}
	}
	var out []string
	for entry := range strings.SplitSeq(list, ",") {
		addr := strings.TrimSpace(entry)
		if addr == "" {
			return nil, &HubAddrError{Addr: list, Reason: "empty entry in the list: want HOST:PORT[,HOST:PORT…]"}
		}
		if err := checkHubAddr(addr); err != nil {
			return nil, err
		}
		if slices.Contains(out, addr) {
			return nil, &HubAddrError{Addr: addr, Reason: "listed twice"}
		}
		out = append(out, addr)
	}
	return out, nil
}

// checkHubAddr checks one HOST:PORT hub address.
func checkHubAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return &HubAddrError{Addr: addr, Reason: "want HOST:PORT, e.g. 127.0.0.1:50051"}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return &HubAddrError{Addr: addr, Reason: fmt.Sprintf("port %q must be a number from 1 to 65535", port)}
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		return &HubAddrError{Addr: addr, Reason: fmt.Sprintf("%q is neither an IP address nor a host name", host)}
	}
	return nil
}

// validHostname reports whether h is a DNS name: dot-separated labels of
// letters, digits, '-' and '_', at most 253 bytes.
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// endpoint is one hub the agent can dial.
type endpoint struct {
	addr string // what is dialed: IP:port, or the address as configured
	name string // the configured HOST:PORT it came from when resolved from a name, else ""
}

// String is the endpoint as logged: "10.0.0.2:50051 (hubs.example:50051)".
func (e endpoint) String() string {
	if e.name == "" {
		return e.addr
	}
	return e.addr + " (" + e.name + ")"
}

// hubPicker chooses the hub of each connection attempt. The first attempt
// goes to a hub chosen by a stable hash of the machine id, so a fleet given
// the same list spreads over it; after that, to a random hub among those
// that have not failed within hubCooldown (all of them failed: the one
// that failed longest ago), so the agents of a dead hub scatter over the
// survivors instead of herding onto one. An agent stays on the hub it has
// until that stream fails: it does not move back. Used by the connect
// loop's goroutine only.
type hubPicker struct {
	hubs     []string // as configured
	resolver Resolver
	machine  string
	log      func(msg string, args ...any)

	failedAt map[string]time.Time // endpoint addr -> when its last stream or attempt failed
	picked   bool                 // a first pick was made
}

// resolve returns the endpoints of every configured hub, names looked up
// anew, in a stable order. A name that fails to resolve is logged and left
// out; it is an error only when no endpoint remains.
func (p *hubPicker) resolve(ctx context.Context) ([]endpoint, error) {
	var out []endpoint
	var errs []error
	for _, h := range p.hubs {
		host, port, err := net.SplitHostPort(h)
		if err != nil || host == "" || net.ParseIP(host) != nil {
			out = append(out, endpoint{addr: h}) // IP literal, or a gRPC target URI
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
		ips, err := p.resolver.LookupHost(rctx, host)
		cancel()
		if err == nil && len(ips) == 0 {
			err = errors.New("no addresses")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("resolve hub %s: %w", h, err))
			continue
		}
		slices.Sort(ips)
		for _, ip := range ips {
			out = append(out, endpoint{addr: net.JoinHostPort(ip, port), name: h})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no hub address resolved: %w", errors.Join(errs...))
	}
	for _, err := range errs {
		p.log("hub name did not resolve; trying the other hubs", "err", err)
	}
	// One address reached under two names is one hub.
	seen := map[string]bool{}
	out = slices.DeleteFunc(out, func(e endpoint) bool {
		dup := seen[e.addr]
		seen[e.addr] = true
		return dup
	})
	return out, nil
}

// pick returns the hub to dial now and how many hubs there are.
func (p *hubPicker) pick(ctx context.Context, now time.Time) (endpoint, int, error) {
	eps, err := p.resolve(ctx)
	if err != nil {
		return endpoint{}, 0, err
	}
	if !p.picked {
		p.picked = true
		h := fnv.New32a()
		h.Write([]byte(p.machine))
		return eps[h.Sum32()%uint32(len(eps))], len(eps), nil
	}
	var healthy []endpoint
	oldest := eps[0]
	for _, e := range eps {
		at, failed := p.failedAt[e.addr]
		if !failed || now.Sub(at) >= hubCooldown {
			healthy = append(healthy, e)
		}
		if at.Before(p.failedAt[oldest.addr]) {
			oldest = e
		}
	}
	if len(healthy) == 0 {
		return oldest, len(eps), nil
	}
	return healthy[rand.IntN(len(healthy))], len(eps), nil
}

// failed records that a stream to, or an attempt at, addr failed at now.
func (p *hubPicker) failed(addr string, now time.Time) {
	if p.failedAt == nil {
		p.failedAt = map[string]time.Time{}
	}
	p.failedAt[addr] = now
}
