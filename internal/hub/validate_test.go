package hub

import (
	"strings"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/remotewrite"
)

// TestConfigValidate: every check of the hub's settings lives in Validate,
// names the setting by its key, and passes the defaults.
func TestConfigValidate(t *testing.T) {
	base := func() Config { return Config{DataDir: t.TempDir()}.withDefaults() }
	if c := base(); c.Validate() != nil {
		t.Fatalf("defaults refused: %v", c.Validate())
	}
	if err := (&Config{DataDir: "d"}).Validate(); !namesSetting(err, "retention-raw") {
		t.Errorf("zero retention is not a default for Validate: %v", err)
	}
	f := func(mutate func(*Config), setting, want string) {
		t.Helper()
		c := base()
		mutate(&c)
		err := c.Validate()
		if !namesSetting(err, setting) || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want setting %s and %q", err, setting, want)
		}
	}
	f(func(c *Config) { c.DataDir = "" }, "data-dir", "data-dir is required")
	f(func(c *Config) { c.RetentionRaw = time.Minute }, "retention-raw", "retention-raw 1m0s: must be at least 1h")
	f(func(c *Config) { c.Retention1m = time.Hour }, "retention-1m", "retention-1m 1h0m0s: must be at least retention-raw (24h0m0s)")
	f(func(c *Config) { c.Retention1h = 48 * time.Hour }, "retention-1h", "must be at least retention-1m (720h0m0s)")
	f(func(c *Config) { c.Limits.MaxActiveSeries = 10 }, "max-active-series", "max-active-series 10: must be at least 1000")
	f(func(c *Config) { c.Limits.MaxBodyBytes = 1 }, "max-body-bytes", "must be at least 1024")
	f(func(c *Config) { c.MinFreeDiskMiB = 1 }, "min-free-disk-mib", "must be at least 16")
	f(func(c *Config) { c.Query.MaxSamples = -5 }, "query-max-samples", "query-max-samples -5: must be at least 1")
	f(func(c *Config) { c.Query.MaxSeries = -1 }, "query-max-series", "query-max-series -1: must be at least 1")
	f(func(c *Config) { c.Query.Timeout = time.Millisecond }, "query-timeout", "query-timeout 1ms: must be at least 100ms")
	f(func(c *Config) { c.RemoteWriteMachineLabel = "__name__" }, "remote-write-machine-label", "want a label name")
	f(func(c *Config) { c.RemoteWriteMachineLabel = "host-name" }, "remote-write-machine-label", "want a label name")
	f(func(c *Config) { c.OfflineAfter = 500 * time.Millisecond }, "offline-after", "offline-after 500ms: must be at least 1s")
	f(func(c *Config) { c.ForgetOfflineAfter = time.Second }, "forget-offline-after", "must be 0 (never) or at least offline-after (15s)")
	f(func(c *Config) { c.TLSKey = "k.pem" }, "tls-cert", "tls-cert and tls-key go together")
	f(func(c *Config) { c.TLSClientCA = "ca.pem" }, "tls-client-ca", "tls-client-ca needs TLS")
	f(func(c *Config) { c.ExternalURL = "monitor.example.com" }, "external-url", "want an absolute http(s) URL")
	f(func(c *Config) { c.Security.SessionTTL, c.Security.SessionMaxAge = time.Hour, time.Minute }, "session-max-age", "must be at least session-ttl (1h0m0s)")
	f(func(c *Config) { c.Alerting.Retention = time.Minute }, "alerts-retention", "must be at least 1h")
	f(func(c *Config) { c.Alerting.GroupWait = time.Hour }, "alerts-group-wait", "must be between 10ms and 10m")
	f(func(c *Config) { c.Alerting.RepeatInterval = time.Millisecond }, "alerts-repeat-interval", "must be at least 1s")
	f(func(c *Config) { c.Alerting.LeaderElection = true }, "alerts-leader-election", "needs postgres")

	// --nats and what it needs.
	nats := func(mutate func(*Config)) func(*Config) {
		return func(c *Config) {
			c.Bus.URLs = []string{"nats://u:pw@n1:4222", "nats://n2:4222"}
			c.Postgres = "postgres://db/sysmonstm"
			c.RemoteWrite.Targets = []remotewrite.Target{{URL: "http://vm:8428/api/v1/write"}}
			mutate(c)
		}
	}
	good := base()
	nats(func(*Config) {})(&good)
	if err := good.Validate(); err != nil {
		t.Errorf("a complete --nats setup refused: %v", err)
	}
	f(nats(func(c *Config) { c.Postgres = "" }), "nats", "nats://n1:4222,nats://n2:4222: needs postgres")
	f(nats(func(c *Config) { c.RemoteWrite.Targets = nil }), "nats", "needs at least one remote-write URL")
	f(nats(func(c *Config) { c.Bus.URLs = []string{"n1:4222"} }), "nats", "want nats://HOST:PORT")
	f(nats(func(c *Config) { c.Bus.Replicas = 7 }), "nats-replicas", "want 1 to 5")
	f(nats(func(c *Config) { c.Bus.MaxAge = time.Second }), "nats-max-age", "must be at least 1m")
	f(nats(func(c *Config) { c.Bus.MaxBytes = -1 }), "nats-max-bytes", "must be 0 (no bound) or more")
	f(nats(func(c *Config) { c.Bus.CredsFile = "/nonexistent/nats.creds" }), "nats-creds", "cannot read it")
	f(func(c *Config) { c.Bus.Replicas = 3 }, "nats-replicas", "needs nats")
}
