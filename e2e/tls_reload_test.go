package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// writeClientPKI makes a CA for agents and one client certificate it signed;
// it writes clients-ca.pem, client.pem and client-key.pem into dir.
func writeClientPKI(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	ca, caKey, caDER := testCA(t, "sysmonstm agents CA")
	der, keyDER := issueCert(t, ca, caKey, &x509.Certificate{
		SerialNumber: big.NewInt(11), Subject: pkix.Name{CommonName: "agent"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return writePEM(t, dir, "clients-ca.pem", "CERTIFICATE", caDER), writePEM(t, dir, "client.pem", "CERTIFICATE", der),
		writePEM(t, dir, "client-key.pem", "EC PRIVATE KEY", keyDER)
}

// TestTLSReloadAndMutualTLS: a hub with --tls-client-ca admits only the agent
// presenting a client certificate of that CA; after its certificate files
// are replaced, SIGHUP makes it serve the new certificate without a restart,
// and the admitted agent keeps streaming.
func TestTLSReloadAndMutualTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	caFile, certFile, keyFile, pool := writeTestPKI(t, dir)
	clientCA, clientCert, clientKey := writeClientPKI(t, dir)
	hub := start(t, "mtls hub", "hub", "--listen-http", "127.0.0.1:0", "--listen-grpc", "127.0.0.1:0",
		"--data-dir", filepath.Join(dir, "data"), "--tls-cert", certFile, "--tls-key", keyFile,
		"--tls-client-ca", clientCA, "--log-level", "debug")
	httpAddr, grpcAddr := hubAddrs(t, hub, 20*time.Second)
	getWith := func(p *x509.CertPool, path string) error {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p}}}
		resp, err := c.Get("https://" + httpAddr + path)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s: status %d", path, resp.StatusCode)
		}
		return nil
	}
	testutil.WaitFor(t, 20*time.Second, "hub ready", func() error { return getWith(pool, "/ready") })

	start(t, "agent with client cert", "agent", "--hub", grpcAddr, "--machine-id", "mutual", "--interval", "250ms",
		"--tls-ca", caFile, "--tls-cert", clientCert, "--tls-key", clientKey)
	bare := start(t, "agent without client cert", "agent", "--hub", grpcAddr, "--machine-id", "bare", "--interval", "250ms", "--tls-ca", caFile)
	testutil.WaitFor(t, 20*time.Second, "mutual TLS agent online", func() error {
		return getWith(pool, "/api/machines/mutual")
	})
	time.Sleep(time.Second)
	if err := getWith(pool, "/api/machines/bare"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("the agent without a client certificate got in: %v", err)
	}
	if out := bare.out.String(); !strings.Contains(out, "hub unreachable") {
		t.Errorf("agent without a client certificate should report the hub unreachable:\n%s", truncate(out))
	}

	// Replace the server certificate with one from another CA, then SIGHUP.
	dir2 := t.TempDir()
	_, cert2, key2, pool2 := writeTestPKI(t, dir2)
	for src, dst := range map[string]string{cert2: certFile, key2: keyFile} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := getWith(pool, "/health"); err != nil {
		t.Fatalf("before SIGHUP the old certificate must still be served: %v", err)
	}
	if err := hub.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "new certificate served after SIGHUP", func() error { return getWith(pool2, "/health") })
	if err := getWith(pool, "/health"); err == nil {
		t.Error("the old certificate is still served after SIGHUP")
	}
	if !strings.Contains(hub.out.String(), "TLS certificate reloaded") {
		t.Error("the hub did not log the reload")
	}
	if err := hub.cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the hub exited on SIGHUP: %v", err)
	}
}
