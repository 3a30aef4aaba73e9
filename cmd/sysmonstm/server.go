//go:build !agentonly

package main

import (
	"context"
	"io"
)

// registerServer adds the commands that embed the hub (and with it the
// storage engine and the metadata database) and the load generator. The
// agentonly build leaves them out:
// see docs/benchmarks.md (agent RSS) and `make build-agent`.
func registerServer(m map[string]func(context.Context, []string, io.Writer, io.Writer) error) {
	m["up"] = runUp
	m["hub"] = runHub
	m["loadgen"] = runLoadgen
	m["token"] = runToken
	m["user"] = runUser
	m["machine"] = runMachine
	m["edge"] = runEdge
}
