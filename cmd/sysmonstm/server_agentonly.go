//go:build agentonly

package main

import (
	"context"
	"errors"
	"io"
)

var errAgentOnly = errors.New("this is the agent-only build (make build-agent), which has no hub, storage engine or load generator; run the full sysmonstm binary for hub, up, loadgen, edge, token and user")

// registerServer makes hub, up and loadgen explain themselves in the agent-only
// build: it has no hub, so its binary does not link the storage engine and
// its dependencies.
func registerServer(m map[string]func(context.Context, []string, io.Writer, io.Writer) error) {
	noHub := func(context.Context, []string, io.Writer, io.Writer) error { return errAgentOnly }
	m["up"] = noHub
	m["hub"] = noHub
	m["loadgen"] = noHub
}
