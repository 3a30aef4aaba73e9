package hub

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testCA signs certificates for the TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns PEM certificate and key with the given serial and usage.
func (ca *testCA) issue(t *testing.T, serial int64, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// handshake dials a TLS server built from conf and returns the serial of
// the certificate it presented, or the handshake error.
func handshake(t *testing.T, conf *tls.Config, client *tls.Config) (int64, error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_ = c.(*tls.Conn).Handshake()
		// Read until the client closes, so a client-side verification
		// error is the one reported.
		_, _ = c.Read(make([]byte, 1))
		c.Close()
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), client)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	// TLS 1.3 reports a rejected client certificate on the first read.
	_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeoutOrEOF(err) {
		return 0, err
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64(), nil
}

func isTimeoutOrEOF(err error) bool {
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return true
	}
	return err.Error() == "EOF"
}

func TestTLSReloadServesTheNewCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c1, k1 := ca.issue(t, 100, x509.ExtKeyUsageServerAuth)
	writeFile(t, certFile, c1)
	writeFile(t, keyFile, k1)
	tf, err := newTLSFiles(certFile, keyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	client := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	if serial, err := handshake(t, tf.httpConfig(), client); err != nil || serial != 100 {
		t.Fatalf("before reload: serial %d, %v", serial, err)
	}

	c2, k2 := ca.issue(t, 200, x509.ExtKeyUsageServerAuth)
	writeFile(t, certFile, c2)
	writeFile(t, keyFile, k2)
	if err := tf.Reload(); err != nil {
		t.Fatal(err)
	}
	if serial, err := handshake(t, tf.httpConfig(), client); err != nil || serial != 200 {
		t.Fatalf("after reload: serial %d, %v", serial, err)
	}

	// A broken file keeps the previous certificate.
	writeFile(t, keyFile, []byte("not a key"))
	if err := tf.Reload(); err == nil {
		t.Fatal("reload of a broken key succeeded")
	}
	if serial, err := handshake(t, tf.httpConfig(), client); err != nil || serial != 200 {
		t.Fatalf("after failed reload: serial %d, %v", serial, err)
	}
}

func TestMutualTLSRequiresAClientCertificateFromTheCA(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	c, k := ca.issue(t, 1, x509.ExtKeyUsageServerAuth)
	writeFile(t, filepath.Join(dir, "cert.pem"), c)
	writeFile(t, filepath.Join(dir, "key.pem"), k)
	writeFile(t, filepath.Join(dir, "clients.pem"), ca.pem)
	tf, err := newTLSFiles(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "clients.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)

	if _, err := handshake(t, tf.grpcConfig(), &tls.Config{RootCAs: pool, ServerName: "localhost"}); err == nil {
		t.Fatal("a client without a certificate was accepted")
	}
	other := newTestCA(t)
	oc, ok := other.issue(t, 7, x509.ExtKeyUsageClientAuth)
	stranger, _ := tls.X509KeyPair(oc, ok)
	if _, err := handshake(t, tf.grpcConfig(), &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: []tls.Certificate{stranger}}); err == nil {
		t.Fatal("a client certificate from another CA was accepted")
	}
	cc, ck := ca.issue(t, 8, x509.ExtKeyUsageClientAuth)
	agent, _ := tls.X509KeyPair(cc, ck)
	if _, err := handshake(t, tf.grpcConfig(), &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: []tls.Certificate{agent}}); err != nil {
		t.Fatalf("the CA's client certificate was refused: %v", err)
	}
	// The HTTPS side never asks browsers for a certificate.
	if _, err := handshake(t, tf.httpConfig(), &tls.Config{RootCAs: pool, ServerName: "localhost"}); err != nil {
		t.Fatalf("HTTPS without a client certificate: %v", err)
	}
}
