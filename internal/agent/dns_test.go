package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// dnsServer answers A queries for one name over UDP from a table the test
// changes; every other question gets an empty NOERROR answer. It is just
// enough DNS for Go's own resolver (net.Resolver with PreferGo), which the
// agent then uses unchanged.
type dnsServer struct {
	conn net.PacketConn
	name string // lower case, with the final dot

	mu      sync.Mutex // protects ips and queries
	ips     []net.IP
	queries int
}

func startDNS(t *testing.T, name string, ips ...string) *dnsServer {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &dnsServer{conn: conn, name: name}
	d.set(ips...)
	t.Cleanup(func() { conn.Close() })
	go d.serve()
	return d
}

func (d *dnsServer) set(ips ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ips = nil
	for _, s := range ips {
		d.ips = append(d.ips, net.ParseIP(s).To4())
	}
}

func (d *dnsServer) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp := d.answer(buf[:n]); resp != nil {
			_, _ = d.conn.WriteTo(resp, from)
		}
	}
}

// answer builds the response to query q, nil for a malformed one.
func (d *dnsServer) answer(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	// The question: labels up to the root, then type and class.
	i := 12
	var labels []string
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if l > 63 || i+1+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	if i+5 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i+1:])
	question := q[12 : i+5]
	d.mu.Lock()
	d.queries++
	var ips []net.IP
	if strings.ToLower(strings.Join(labels, ".")+".") == d.name && qtype == 1 {
		ips = d.ips
	}
	d.mu.Unlock()

	resp := make([]byte, 12, 512)
	copy(resp, q[:2])                            // id
	binary.BigEndian.PutUint16(resp[2:], 0x8180) // response, recursion desired and available, NOERROR
	binary.BigEndian.PutUint16(resp[4:], 1)
	binary.BigEndian.PutUint16(resp[6:], uint16(len(ips)))
	resp = append(resp, question...)
	for _, ip := range ips {
		resp = append(resp, 0xc0, 12) // the name: a pointer to the question's
		resp = binary.BigEndian.AppendUint16(resp, 1)
		resp = binary.BigEndian.AppendUint16(resp, 1)
		resp = binary.BigEndian.AppendUint32(resp, 0) // TTL: nothing cached
		resp = binary.BigEndian.AppendUint16(resp, 4)
		resp = append(resp, ip...)
	}
	return resp
}

// resolver is a real net.Resolver that asks d.
func (d *dnsServer) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "udp", d.conn.LocalAddr().String())
	}}
}

// TestHubNameWithSeveralAddresses: a hub name whose DNS records list
// several addresses (served over real DNS to Go's resolver) is several
// hubs: the agent fails over between them, and a record added while it
// runs is used at the next reconnect.
func TestHubNameWithSeveralAddresses(t *testing.T) {
	// Three hubs on one port at 127.0.0.1, .2 and .3 (all loopback on Linux).
	first := startServer(t, newTestHub(), "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(first.addr)
	srvs := []*server{first,
		startServer(t, newTestHub(), "127.0.0.2:"+port),
		startServer(t, newTestHub(), "127.0.0.3:"+port)}
	dns := startDNS(t, "hubs.sysmonstm.test.", "127.0.0.1", "127.0.0.2")

	o := testOptions("hubs.sysmonstm.test:" + port)
	o.Resolver = dns.resolver()
	a := startAgent(t, o, (&counter{}).source, nil)
	on := func() int {
		h := a.Stats().Hub
		for i, s := range srvs {
			if strings.HasPrefix(h, s.addr+" ") {
				return i
			}
		}
		return -1
	}
	waitFor(t, 5*time.Second, "connected", func() bool { return on() >= 0 })
	if h := a.Stats().Hub; !strings.HasSuffix(h, " (hubs.sysmonstm.test:"+port+")") {
		t.Errorf("Stats.Hub %q does not name the hub name", h)
	}
	was := on()
	if was == 2 {
		t.Fatalf("on 127.0.0.3 before the record for it was added")
	}
	srvs[was].stop()
	waitFor(t, 5*time.Second, "failover to the other address", func() bool { i := on(); return i >= 0 && i != was })
	other := on()
	if other != 1-was {
		t.Fatalf("failed over to hub %d, want %d", other, 1-was)
	}

	// A record for 127.0.0.3 appears; then the second hub dies too.
	dns.set("127.0.0.3", "127.0.0.1", "127.0.0.2")
	srvs[other].stop()
	waitFor(t, 10*time.Second, "failover to the address added to DNS", func() bool { return on() == 2 })
	if f := a.Stats().Failovers; f != 2 {
		t.Errorf("Failovers = %d, want 2", f)
	}
	dns.mu.Lock()
	defer dns.mu.Unlock()
	if dns.queries < 3 {
		t.Errorf("%d DNS queries: the name was not looked up again on reconnect", dns.queries)
	}
}

// TestHubNameVerifiedByTLS: addresses a hub name resolved to are dialed by
// IP but verified as the name, so a certificate for the name (and no IP)
// is accepted there and refused when the same hub is given by IP.
func TestHubNameVerifiedByTLS(t *testing.T) {
	const name = "hubs.sysmonstm.test"
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	serverCreds := grpc.Creds(credentials.NewServerTLSFromCert(&tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}))
	clientTLS := grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))

	h1, h2 := newTestHub(), newTestHub()
	s1 := &server{t: t, hub: h1, addr: "127.0.0.1:0", opts: []grpc.ServerOption{serverCreds}}
	s1.start()
	t.Cleanup(s1.stop)
	_, port, _ := net.SplitHostPort(s1.addr)
	s2 := &server{t: t, hub: h2, addr: "127.0.0.2:" + port, opts: []grpc.ServerOption{serverCreds}}
	s2.start()
	t.Cleanup(s2.stop)
	dns := startDNS(t, name+".", "127.0.0.1", "127.0.0.2")

	o := testOptions(name + ":" + port)
	o.Resolver, o.DialOptions = dns.resolver(), []grpc.DialOption{clientTLS}
	a := startAgent(t, o, (&counter{}).source, nil)
	waitFor(t, 5*time.Second, "connected over TLS to an address of the name", func() bool { return a.Stats().Connected })

	byIP := testOptions(s1.addr + "," + s2.addr)
	byIP.MachineID = "by-ip"
	byIP.DialOptions = []grpc.DialOption{clientTLS}
	var log logBuffer
	byIP.Logger = slog.New(slog.NewTextHandler(&log, nil))
	b := startAgent(t, byIP, (&counter{}).source, nil)
	waitFor(t, 5*time.Second, "a certificate error", func() bool {
		return strings.Contains(log.String(), "cannot validate certificate for 127.0.0.")
	})
	if b.Stats().Connected {
		t.Error("connected by IP although the certificate names only " + name)
	}
}
