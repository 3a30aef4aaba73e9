//go:build !agentonly

package main

import (
	"flag"

	"github.com/sysmonstm/sysmonstm/internal/history"
	"github.com/sysmonstm/sysmonstm/internal/hub"
)

// historyFlags registers --history-url and its credentials and timeout.
func historyFlags(fs *flag.FlagSet, c *hub.HistoryConfig) {
	fs.StringVar(&c.URL, "history-url", "", "read history, export and the PromQL API from this Prometheus query API `URL` (e.g. http://victoria:8428; user:password@ and https:// work) instead of the embedded store")
	fs.StringVar(&c.BearerTokenFile, "history-bearer-token-file", "", "`FILE` whose first line is the bearer token for --history-url")
	fs.StringVar(&c.BasicAuthFile, "history-basic-auth-file", "", "`FILE` whose first line is user:password (basic auth) for --history-url")
	fs.DurationVar(&c.Timeout, "history-timeout", history.DefaultTimeout, "`DURATION` one request to --history-url may take; beyond it the history API answers 503")
}
