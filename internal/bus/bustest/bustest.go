// Package bustest runs throw-away NATS servers with JetStream in a test's
// process (nats-server/v2, embedded) for tests of the sample bus; hubs in
// other processes reach them over TCP like any NATS.
package bustest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATS runs a single NATS server with JetStream on a free loopback port,
// its storage in a temporary directory, until the test ends.
func NATS(t testing.TB) *server.Server {
	t.Helper()
	return Run(t, &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
}

// Run starts a NATS server with opts, waits until it takes connections and
// shuts it down when the test ends.
func Run(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}
