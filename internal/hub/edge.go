package hub

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"golang.org/x/sync/errgroup"

	"github.com/sysmonstm/sysmonstm/internal/config"
	"github.com/sysmonstm/sysmonstm/internal/edge"
)

// EdgeConfig is where the hub forwards its public live view (a
// `sysmonstm edge` relay). Forwarding is off while URL is empty.
type EdgeConfig struct {
	URL string // the edge's publish endpoint: wss://HOST/api/publish (ws:// for loopback)
	Key string // the edge's --key, at least 16 characters
	// Machines are the globs of the public machine ids; "" means "*".
	Machines string
	// Metrics are the public series selectors; "" means edge.DefaultMetrics.
	Metrics string
	// MachineLabels are the globs of the machine label names sent along;
	// "" means "*", "!*" sends none.
	MachineLabels string
	TLSCA         string // PEM CA bundle that verifies a wss:// edge; "" uses the system roots
}

// edgePart holds the forwarder to a `sysmonstm edge` relay.
type edgePart struct {
	fwd *edge.Forwarder
}

// setupEdge builds the forwarder when an edge is configured.
func (h *Hub) setupEdge() error {
	c := h.cfg.Edge
	if c.URL == "" {
		if c.Key != "" {
			h.log.Warn("--edge-key is set without --edge-url: nothing is forwarded")
		}
		return nil
	}
	if c.Machines == "" {
		c.Machines = "*"
	}
	if c.Metrics == "" {
		c.Metrics = edge.DefaultMetrics
	}
	if c.MachineLabels == "" {
		c.MachineLabels = "*"
	}
	machines, err := edge.ParseGlobs(c.Machines)
	if err != nil {
		return &config.SettingError{Setting: "edge-machines", Value: fmt.Sprintf("%q", c.Machines), Err: err}
	}
	if machines.Empty() {
		return &config.SettingError{Setting: "edge-machines", Value: fmt.Sprintf("%q", c.Machines), Reason: "no pattern; give globs of machine ids, * for every machine"}
	}
	metrics, err := edge.ParseSelectors(c.Metrics)
	if err != nil {
		return &config.SettingError{Setting: "edge-metrics", Err: err}
	}
	if len(metrics) == 0 {
		return &config.SettingError{Setting: "edge-metrics", Reason: "no selector; give metric names such as memory_usage_percent"}
	}
	labels, err := edge.ParseGlobs(c.MachineLabels)
	if err != nil {
		return &config.SettingError{Setting: "edge-machine-labels", Value: fmt.Sprintf("%q", c.MachineLabels), Err: err}
	}
	var tlsConf *tls.Config
	if c.TLSCA != "" {
		pem, err := os.ReadFile(c.TLSCA)
		if err != nil {
			return &config.SettingError{Setting: "edge-tls-ca", Err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return &config.SettingError{Setting: "edge-tls-ca", Value: c.TLSCA, Reason: "no PEM certificate in the file"}
		}
		tlsConf = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	h.edge.fwd, err = edge.NewForwarder(edge.ForwarderOptions{
		URL:           c.URL,
		Key:           c.Key,
		Source:        h.live,
		Machines:      machines,
		Metrics:       metrics,
		MachineLabels: labels,
		TLSConfig:     tlsConf,
		Logger:        h.log.With("component", "edge"),
		Registerer:    h.reg,
	})
	return err
}

// runEdge starts the forwarder on comps.
func (h *Hub) runEdge(ctx context.Context, comps *errgroup.Group) {
	if h.edge.fwd == nil {
		return
	}
	comps.Go(func() error { return h.edge.fwd.Run(ctx) })
}
