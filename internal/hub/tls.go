package hub

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/sysmonstm/sysmonstm/internal/config"
)

// tlsFiles serves the hub's certificate (and, for mutual TLS, the client
// CA pool) from files that Reload re-reads, so a renewed certificate takes
// effect on SIGHUP without a restart. Handshakes in progress keep the
// material they started with; a failed reload keeps the previous material.
type tlsFiles struct {
	certFile, keyFile, clientCAFile string

	cert     atomic.Pointer[tls.Certificate]
	clientCA atomic.Pointer[x509.CertPool]
}

func newTLSFiles(certFile, keyFile, clientCAFile string) (*tlsFiles, error) {
	t := &tlsFiles{certFile: certFile, keyFile: keyFile, clientCAFile: clientCAFile}
	if err := t.Reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// Reload re-reads the certificate, key and client CA files; on error the
// previous ones stay in use.
func (t *tlsFiles) Reload() error {
	cert, err := tls.LoadX509KeyPair(t.certFile, t.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate: %w", err)
	}
	var pool *x509.CertPool
	if t.clientCAFile != "" {
		pem, err := os.ReadFile(t.clientCAFile)
		if err != nil {
			return &config.SettingError{Setting: "tls-client-ca", Err: err}
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return &config.SettingError{Setting: "tls-client-ca", Value: t.clientCAFile, Reason: "no PEM certificate found"}
		}
	}
	t.cert.Store(&cert)
	if pool != nil {
		t.clientCA.Store(pool)
	}
	return nil
}

func (t *tlsFiles) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return t.cert.Load(), nil
}

// httpConfig is the HTTPS listener's configuration: server certificate
// only (browsers and API clients authenticate with sessions and tokens).
func (t *tlsFiles) httpConfig() *tls.Config {
	return &tls.Config{GetCertificate: t.getCertificate, MinVersion: tls.VersionTLS12}
}

// grpcConfig is the agents' listener configuration: with a client CA,
// every agent must present a certificate it signed (mutual TLS), on top of
// its token.
func (t *tlsFiles) grpcConfig() *tls.Config {
	base := &tls.Config{GetCertificate: t.getCertificate, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2"}}
	if t.clientCAFile == "" {
		return base
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return &tls.Config{
				GetCertificate: t.getCertificate,
				MinVersion:     tls.VersionTLS12,
				NextProtos:     []string{"h2"},
				ClientAuth:     tls.RequireAndVerifyClientCert,
				ClientCAs:      t.clientCA.Load(),
			}, nil
		},
	}
}

// ReloadTLS re-reads --tls-cert, --tls-key and --tls-client-ca (the hub
// commands call it on SIGHUP). Without TLS it does nothing.
func (h *Hub) ReloadTLS() error {
	if h.tlsFiles == nil {
		return nil
	}
	if err := h.tlsFiles.Reload(); err != nil {
		return err
	}
	h.log.Info("TLS certificate reloaded", "cert", h.cfg.TLSCert)
	return nil
}

var errTLSPair = &config.SettingError{Reason: "{tls-cert} and {tls-key} go together: give both or neither"}
