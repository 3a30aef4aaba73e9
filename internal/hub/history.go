package hub

import (
	"fmt"
	"strings"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/config"
	"github.com/sysmonstm/sysmonstm/internal/history"
	"github.com/sysmonstm/sysmonstm/internal/httpjson"
	"github.com/sysmonstm/sysmonstm/internal/promapi"
	"github.com/sysmonstm/sysmonstm/internal/remotewrite"
	"github.com/sysmonstm/sysmonstm/internal/web"
)

// HistoryConfig reads history (charts, history API, export, the PromQL
// API) from a Prometheus-compatible TSDB instead of the embedded store;
// the embedded store keeps being written (and serves nothing but the
// remote-write forwarding behind it). Empty URL: the embedded store.
type HistoryConfig struct {
	URL             string // the TSDB's query API base, e.g. http://victoria:8428
	BearerTokenFile string
	BasicAuthFile   string
	Timeout         time.Duration // one TSDB request; 0 = history.DefaultTimeout
}

// validate checks the URL and credential files.
func (c HistoryConfig) validate() error {
	if c.URL == "" {
		if c.BearerTokenFile != "" || c.BasicAuthFile != "" {
			return &config.SettingError{Reason: "{history-bearer-token-file} and {history-basic-auth-file} need {history-url}"}
		}
		return nil
	}
	if _, err := history.New(history.Options{URL: c.URL}); err != nil {
		return &config.SettingError{Setting: "history-url", Value: fmt.Sprintf("%q", remotewrite.RedactURL(c.URL)),
			Reason: "want an absolute http(s) URL of a Prometheus query API, such as http://victoria:8428"}
	}
	if c.BearerTokenFile != "" && c.BasicAuthFile != "" {
		return &config.SettingError{Reason: "give {history-bearer-token-file} or {history-basic-auth-file}, not both"}
	}
	if err := readableFiles("history-bearer-token-file", c.BearerTokenFile, "history-basic-auth-file", c.BasicAuthFile); err != nil {
		return err
	}
	if c.Timeout < 0 {
		return &config.SettingError{Setting: "history-timeout", Value: c.Timeout.String(), Reason: "must be positive"}
	}
	return nil
}

// setupHistory returns what the web server reads history from and the
// PromQL API's routes: the embedded store and promapi over it, or with
// --history-url the TSDB and a proxy to its query API (/federate stays on
// promapi: it serves the live state).
func (h *Hub) setupHistory(prom *promapi.API) (web.History, []httpjson.Route, error) {
	c := h.cfg.History
	if c.URL == "" {
		return h.store, prom.Routes(), nil
	}
	cl, err := history.New(history.Options{
		URL: c.URL, BearerTokenFile: c.BearerTokenFile, BasicAuthFile: c.BasicAuthFile,
		Timeout: c.Timeout, Logger: h.log.With("component", "history"), Registerer: h.reg,
	})
	if err != nil {
		return nil, nil, err
	}
	routes := cl.ProxyRoutes()
	for _, rt := range prom.Routes() {
		if strings.HasSuffix(rt.Pattern, " /federate") {
			routes = append(routes, rt)
		}
	}
	h.log.Info("history read from an external TSDB", "url", cl.Redacted())
	return cl, routes, nil
}
