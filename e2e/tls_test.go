package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// writeTestPKI makes a CA and a server certificate for 127.0.0.1/localhost
// and writes ca.pem, cert.pem, key.pem into dir.
func writeTestPKI(t *testing.T, dir string) (caFile, certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	ca, caKey, caDER := testCA(t, "sysmonstm test CA")
	der, keyDER := issueCert(t, ca, caKey, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "hub"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER), writePEM(t, dir, "cert.pem", "CERTIFICATE", der),
		writePEM(t, dir, "key.pem", "EC PRIVATE KEY", keyDER), pool
}

// testCA makes a self-signed CA valid for an hour either side of now.
func testCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	return ca, key, der
}

// issueCert signs tmpl (given its names, serial and usage) with the CA for
// a new key; it returns the certificate and key DER.
func issueCert(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, tmpl *x509.Certificate) (der, keyDER []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ = x509.MarshalECPrivateKey(key)
	return der, keyDER
}

// writePEM writes b as one PEM block of type typ to dir/name (mode 0600).
func writePEM(t *testing.T, dir, name, typ string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTLSBetweenAgentAndHub: a hub serving HTTPS and gRPC over TLS from
// --tls-cert/--tls-key, an agent trusting it with --tls-ca, and an agent
// without the CA that is refused.
func TestTLSBetweenAgentAndHub(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	caFile, certFile, keyFile, pool := writeTestPKI(t, dir)
	hub := start(t, "tls hub", "hub", "--listen-http", "127.0.0.1:0", "--listen-grpc", "127.0.0.1:0",
		"--data-dir", filepath.Join(dir, "data"), "--tls-cert", certFile, "--tls-key", keyFile, "--log-level", "debug")
	httpAddr, grpcAddr := hubAddrs(t, hub, 20*time.Second)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(path string, v any) error {
		resp, err := client.Get("https://" + httpAddr + path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s: status %d", path, resp.StatusCode)
		}
		if v != nil {
			return json.NewDecoder(resp.Body).Decode(v)
		}
		return nil
	}
	testutil.WaitFor(t, 20*time.Second, "TLS hub ready", func() error { return get("/ready", nil) })

	start(t, "tls agent", "agent", "--hub", grpcAddr, "--machine-id", "secure", "--interval", "250ms", "--tls-ca", caFile)
	bad := start(t, "agent without CA", "agent", "--hub", grpcAddr, "--machine-id", "plaintext", "--interval", "250ms")
	testutil.WaitFor(t, 20*time.Second, "TLS agent online", func() error {
		var m machine
		if err := get("/api/machines/secure", &m); err != nil {
			return err
		}
		if !m.Online || len(m.Metrics) == 0 {
			return fmt.Errorf("online=%v metrics=%d", m.Online, len(m.Metrics))
		}
		return nil
	})
	time.Sleep(time.Second)
	var list []machine
	if err := get("/api/machines", &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != "secure" {
		t.Fatalf("machines %v: the plaintext agent must not get in", list)
	}
	if out := bad.out.String(); !strings.Contains(out, "hub unreachable") {
		t.Errorf("plaintext agent should report the hub unreachable; output:\n%s", truncate(out))
	}
	// Plain HTTP to the TLS listener is not served.
	if resp, err := http.Get("http://" + httpAddr + "/health"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP answered 200 on the TLS listener")
		}
	}
}
