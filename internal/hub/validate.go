package hub

import (
	"fmt"
	"net/url"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/config"
	"github.com/sysmonstm/sysmonstm/internal/db"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/netguard"
	"github.com/sysmonstm/sysmonstm/internal/promapi"
	"github.com/sysmonstm/sysmonstm/internal/store"
)

// withDefaults returns c with the documented defaults of its zero values
// (the same the components would pick), so that Validate can check it.
func (c Config) withDefaults() Config {
	set := func(p *time.Duration, d time.Duration) {
		if *p == 0 {
			*p = d
		}
	}
	setInt := func(p *int, d int) {
		if *p == 0 {
			*p = d
		}
	}
	if c.ListenHTTP == "" {
		c.ListenHTTP = "127.0.0.1:8000"
	}
	if c.RemoteWriteMachineLabel == "" {
		c.RemoteWriteMachineLabel = "instance"
	}
	if c.ListenGRPC == "" {
		c.ListenGRPC = "127.0.0.1:50051"
	}
	set(&c.RetentionRaw, store.DefaultRetentionRaw)
	set(&c.Retention1m, store.DefaultRetention1m)
	set(&c.Retention1h, store.DefaultRetention1h)
	set(&c.OfflineAfter, 15*time.Second)
	setInt(&c.Limits.MaxSeriesPerMachine, 100_000)
	setInt(&c.Limits.MaxActiveSeries, 2_000_000)
	setInt(&c.Limits.MaxLiveSeriesPerMachine, 10_000)
	setInt(&c.Limits.MaxLabels, metric.DefaultLimits.MaxLabels)
	setInt(&c.Limits.MaxLabelValueLength, metric.DefaultLimits.MaxLabelValueLength)
	if c.Limits.MaxMessageBytes <= 0 {
		c.Limits.MaxMessageBytes = 8 << 20
	}
	if c.Limits.MaxBodyBytes == 0 {
		c.Limits.MaxBodyBytes = 4 << 20
	}
	setInt(&c.Query.MaxSamples, promapi.DefaultMaxSamples)
	setInt(&c.Query.MaxSeries, promapi.DefaultMaxSeries)
	set(&c.Query.Timeout, promapi.DefaultTimeout)
	setInt(&c.MinFreeDiskMiB, store.DefaultMinFree>>20)
	setInt(&c.Conn.MaxPerIP, 256)
	if c.Conn.Exempt == nil {
		c.Conn.Exempt = netguard.Loopback()
	}
	if c.Conn.BodyTimeout <= 0 {
		c.Conn.BodyTimeout = 30 * time.Second
	}
	return c
}

// Validate checks c as given (zero values included; New fills in the
// defaults first) and reports the first setting at fault as a
// *config.SettingError naming it by its key.
func (c *Config) Validate() error {
	invalid := func(setting, value, reason string, args ...any) error {
		return &config.SettingError{Setting: setting, Value: value, Reason: fmt.Sprintf(reason, args...)}
	}
	if c.DataDir == "" {
		return &config.SettingError{Reason: "{data-dir} is required"}
	}
	if c.Postgres != "" {
		if _, err := db.ParsePostgres(c.Postgres); err != nil {
			return &config.SettingError{Setting: "postgres", Value: db.Redact(c.Postgres), Reason: "want postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE", Err: err}
		}
	}
	switch c.StorageEngine {
	case "":
		c.StorageEngine = store.EngineAuto
	case store.EngineAuto, store.EngineTSDB, store.EngineVM:
	default:
		return invalid("storage-engine", c.StorageEngine, "must be %s, %s or %s", store.EngineAuto, store.EngineTSDB, store.EngineVM)
	}
	if c.RetentionRaw < time.Hour {
		return invalid("retention-raw", c.RetentionRaw.String(), "must be at least 1h")
	}
	if c.Retention1m < c.RetentionRaw {
		return invalid("retention-1m", c.Retention1m.String(), "must be at least {retention-raw} (%s)", c.RetentionRaw)
	}
	if c.Retention1h < c.Retention1m {
		return invalid("retention-1h", c.Retention1h.String(), "must be at least {retention-1m} (%s)", c.Retention1m)
	}
	for _, l := range []struct {
		setting string
		v, min  int64
	}{
		{"max-series-per-machine", int64(c.Limits.MaxSeriesPerMachine), 100},
		{"max-active-series", int64(c.Limits.MaxActiveSeries), 1000},
		{"max-live-series-per-machine", int64(c.Limits.MaxLiveSeriesPerMachine), 100},
		{"max-labels-per-series", int64(c.Limits.MaxLabels), 1},
		{"max-label-value-length", int64(c.Limits.MaxLabelValueLength), 16},
		{"max-message-bytes", int64(c.Limits.MaxMessageBytes), 64 << 10},
		{"max-body-bytes", c.Limits.MaxBodyBytes, 1 << 10},
		{"min-free-disk-mib", int64(c.MinFreeDiskMiB), 16},
		{"query-max-samples", int64(c.Query.MaxSamples), 1},
		{"query-max-series", int64(c.Query.MaxSeries), 1},
	} {
		if l.v < l.min {
			return invalid(l.setting, fmt.Sprint(l.v), "must be at least %d", l.min)
		}
	}
	if c.Query.Timeout < 100*time.Millisecond {
		return invalid("query-timeout", c.Query.Timeout.String(), "must be at least 100ms")
	}
	if m := c.Limits.MaxMemory; m < MaxMemoryOff || (m > 0 && m < minMaxMemory) {
		return invalid("max-memory", fmt.Sprint(m), "must be auto, off, or at least %d MiB", minMaxMemory>>20)
	}
	if l := c.RemoteWriteMachineLabel; l != "" && !metric.ValidLabelName(l) {
		return invalid("remote-write-machine-label", fmt.Sprintf("%q", l), "want a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __), such as instance")
	}
	if c.OfflineAfter < time.Second {
		return invalid("offline-after", c.OfflineAfter.String(), "must be at least 1s")
	}
	if c.ForgetOfflineAfter != 0 && c.ForgetOfflineAfter < c.OfflineAfter {
		return invalid("forget-offline-after", c.ForgetOfflineAfter.String(), "must be 0 (never) or at least {offline-after} (%s)", c.OfflineAfter)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errTLSPair
	}
	if c.TLSClientCA != "" && c.TLSCert == "" {
		return &config.SettingError{Reason: "{tls-client-ca} needs TLS: give {tls-cert} and {tls-key} too"}
	}
	if c.ExternalURL != "" {
		u, err := url.Parse(c.ExternalURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return invalid("external-url", fmt.Sprintf("%q", c.ExternalURL), "want an absolute http(s) URL such as https://monitor.example.com/")
		}
	}
	if s := c.Security; s.SessionTTL > 0 && s.SessionMaxAge > 0 && s.SessionMaxAge < s.SessionTTL {
		return invalid("session-max-age", s.SessionMaxAge.String(), "must be at least {session-ttl} (%s)", s.SessionTTL)
	}
	if err := c.validateBus(); err != nil {
		return err
	}
	if err := c.RemoteWrite.validate(); err != nil {
		return err
	}
	if err := c.History.validate(); err != nil {
		return err
	}
	a := c.Alerting
	if a.Retention != 0 && a.Retention < time.Hour {
		return invalid("alerts-retention", a.Retention.String(), "must be at least 1h")
	}
	if a.GroupWait < 0 || (a.GroupWait > 0 && a.GroupWait < 10*time.Millisecond) || a.GroupWait > 10*time.Minute {
		return invalid("alerts-group-wait", a.GroupWait.String(), "must be between 10ms and 10m")
	}
	if a.LeaderElection && c.Postgres == "" {
		return invalid("alerts-leader-election", "true", "needs {postgres}: a hub on SQLite is always its own alert leader")
	}
	if a.RepeatInterval > 0 && a.RepeatInterval < time.Second {
		return invalid("alerts-repeat-interval", a.RepeatInterval.String(), "must be at least 1s (or 0 to disable repeats)")
	}
	return nil
}
