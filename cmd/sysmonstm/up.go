//go:build !agentonly

package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"golang.org/x/sync/errgroup"

	"github.com/sysmonstm/sysmonstm/internal/agent"
	"github.com/sysmonstm/sysmonstm/internal/config"
	"github.com/sysmonstm/sysmonstm/internal/hub"
)

func runUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, lf := newFlagSet("up", "Run a hub with embedded storage plus an agent for this machine: the one-command start.", stderr)
	hc := hubFlags(fs)
	ac, labels := agentFlags(fs, false)
	log, err := parse(fs, lf, args, stderr)
	if err != nil {
		return err
	}
	if err := validateHub(hc); err != nil {
		return err
	}
	if err := agentConfig(fs, ac, labels); err != nil {
		return err
	}
	hc.Logger = log
	hc.Security.LocalAgent = ac.MachineID // the in-process agent's credential
	h, err := hub.New(*hc)
	if err != nil {
		return config.Flagged(err)
	}
	ac.Hub = h.GRPCAddr()
	ac.Token = h.LocalAgentToken()
	ac.DialOptions = loopbackDial(h)
	ac.Logger = log
	a, err := agent.NewHost(*ac)
	if err != nil {
		return config.Flagged(err)
	}
	fmt.Fprintf(stdout, "sysmonstm is up: open %s (machine %q, data in %s; Ctrl-C stops)\n", h.URL(), ac.MachineID, hc.DataDir)
	g, gctx := errgroup.WithContext(ctx)
	go reloadOnSIGHUP(gctx, h, log)
	g.Go(func() error { return h.Run(gctx) })
	g.Go(func() error { return a.Run(gctx) })
	return g.Wait()
}

// loopbackDial is how up's in-process agent reaches its own hub. With TLS on,
// it skips certificate verification: the peer is this process's own listener
// on the address it just bound, and the certificate may name a public host.
// Without TLS it is plaintext over loopback.
func loopbackDial(h *hub.Hub) []grpc.DialOption {
	if !h.TLS() {
		return []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	conf := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} //nolint:gosec // own listener, see above
	return []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(conf))}
}
