package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/config"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/push"
)

// fixtureConfig is a host agent reading the collectors' fake /proc and /sys
// and leaving out the collectors that look for host programs.
func fixtureConfig(t *testing.T, hub string) Config {
	t.Helper()
	return Config{
		Hub: hub, Token: "secret", MachineID: "fixture-1", Version: "1.2.3",
		Labels:   metric.Labels{{Name: "env", Value: "test"}},
		Interval: 100 * time.Millisecond,
		ProcPath: "../collect/testdata/proc", SysPath: "../collect/testdata/sys", RootFS: t.TempDir(),
		Disable:      "smart,gpu,systemd,containers",
		TopProcesses: 3, ProcessesInterval: time.Second,
		PushSocket: filepath.Join(t.TempDir(), "agent.sock"), PushSocketRequired: true,
	}
}

// TestConfigValidate: each bad setting is reported as a SettingError naming
// the setting, never a command-line flag.
func TestConfigValidate(t *testing.T) {
	f := func(mutate func(*Config), setting, want string) {
		t.Helper()
		c := fixtureConfig(t, "127.0.0.1:50051").withDefaults()
		mutate(&c)
		err := c.Validate()
		var se *config.SettingError
		if !errors.As(err, &se) || se.Setting != setting || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v, want setting %q and %q", err, setting, want)
		}
		if strings.Contains(err.Error(), "--") {
			t.Errorf("error %q names a flag", err)
		}
	}
	f(func(c *Config) { c.MachineID = "" }, "machine-id", "")
	f(func(c *Config) { c.Interval = time.Millisecond }, "interval", "interval 1ms: must be between 100ms and 1h")
	f(func(c *Config) { c.Interval = 0 }, "interval", "interval 0s: must be between")
	f(func(c *Config) { c.Hub = "nohost" }, "hub", `hub "nohost": want HOST:PORT`)
	f(func(c *Config) { c.Hub = "127.0.0.1:1, 127.0.0.1:x" }, "hub", `hub "127.0.0.1:x": port "x" must be a number from 1 to 65535`)
	f(func(c *Config) { c.Hub = "127.0.0.1:1,127.0.0.1:1" }, "hub", `hub "127.0.0.1:1": listed twice`)
	f(func(c *Config) { c.Hub = "127.0.0.1:1,,127.0.0.1:2" }, "hub", `hub "127.0.0.1:1,,127.0.0.1:2": empty entry in the list`)
	f(func(c *Config) { c.Hub = "127.0.0.1:1,bad_host!:2" }, "hub", `"bad_host!" is neither an IP address nor a host name`)
	f(func(c *Config) { c.BufferMiB = 0 }, "buffer-mib", "buffer-mib 0: must be between 1 and 4096")
	f(func(c *Config) { c.Disable = "cpu, nope" }, "disable-collectors", "unknown collector nope")
	f(func(c *Config) { c.DirSizes = "x" }, "dir-sizes", "dir-sizes: ")
	f(func(c *Config) { c.DirSizeInterval = time.Second }, "dir-size-interval", "must be between 1m and 168h")
	f(func(c *Config) { c.GPUInterval = 25 * time.Hour }, "gpu-interval", "gpu-interval 25h0m0s: must be between 1s and 24h")
	f(func(c *Config) { c.TopProcesses = 51 }, "top-processes", "top-processes 51: must be between 0 and 50")
	f(func(c *Config) { c.ProcessesInterval = 0 }, "processes-interval", "must be between 1s and 1h")
	f(func(c *Config) { c.PushTTL = -time.Second }, "push-ttl", "must not be negative")
	f(func(c *Config) { c.TLSCert = "c.pem" }, "", "tls-cert and tls-key go together")
	f(func(c *Config) { c.Hub = "10.1.2.3:50051" }, "", "refusing plaintext to 10.1.2.3:50051, which is not on loopback")
	f(func(c *Config) { c.Hub = "127.0.0.1:1,localhost:2,10.1.2.4:3" }, "", "refusing plaintext to 10.1.2.4:3, which is not on loopback")

	ok := fixtureConfig(t, "").withDefaults() // up checks before its hub is bound
	if err := ok.Validate(); err != nil {
		t.Errorf("config without a hub yet: %v", err)
	}
	ok.Hub, ok.Insecure = "10.1.2.3:50051", true
	if err := ok.Validate(); err != nil {
		t.Errorf("plaintext with Insecure: %v", err)
	}
	ok.Insecure, ok.TLS = false, true
	if err := ok.Validate(); err != nil {
		t.Errorf("TLS to a remote hub: %v", err)
	}
}

// TestHostStreamsFixtureHost: the assembled agent streams the collectors'
// samples of the fixture tree, the process-state totals and a pushed value,
// sends its host description in the hello and the top processes as
// snapshots.
func TestHostStreamsFixtureHost(t *testing.T) {
	hub := newTestHub()
	srv := startServer(t, hub, "127.0.0.1:0")
	cfg := fixtureConfig(t, srv.addr)
	h, err := NewHost(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if h.PushSocket() != cfg.PushSocket {
		t.Fatalf("push socket %q, want %q", h.PushSocket(), cfg.PushSocket)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	if err := push.Push(ctx, cfg.PushSocket, []push.Metric{{Name: "backup_ok", Value: 1}}); err != nil {
		t.Fatalf("push: %v", err)
	}
	has := func(name string) bool {
		hub.mu.Lock()
		defer hub.mu.Unlock()
		for _, d := range hub.defs {
			if d.GetName() == name {
				return true
			}
		}
		return false
	}
	for _, name := range []string{"load1", "memory_usage_percent", "uptime_seconds", "processes_state", "backup_ok", "pressure_some_avg10_percent"} {
		waitFor(t, 10*time.Second, "series "+name, func() bool { return has(name) })
	}
	waitFor(t, 10*time.Second, "a process snapshot", func() bool { return hub.snapshotCount() > 0 })

	hub.mu.Lock()
	hello := hub.hellos[0]
	hub.mu.Unlock()
	if hello.GetMachineId() != "fixture-1" || hello.GetToken() != "secret" || hello.GetAgentVersion() != "1.2.3" ||
		hello.GetIntervalMs() != 100 || hello.GetInfo().GetOs() != "linux" || hello.GetInfo().GetCpuThreads() == 0 ||
		len(hello.GetLabels()) != 1 || hello.GetLabels()[0].GetValue() != "test" {
		t.Errorf("hello = %v", hello)
	}
	hub.checkViolations(t)
}

// TestHostPushSocketInUse: a push socket another agent holds fails NewHost
// when it was asked for, and is left out (the agent runs) when defaulted.
func TestHostPushSocketInUse(t *testing.T) {
	cfg := fixtureConfig(t, "127.0.0.1:1")
	first, err := NewHost(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, 5*time.Second, "the first push socket", func() bool { _, err := os.Stat(cfg.PushSocket); return err == nil })

	_, err = NewHost(cfg)
	var se *config.SettingError
	if !errors.As(err, &se) || se.Setting != "push-socket" || !errors.Is(err, push.ErrInUse) {
		t.Fatalf("second agent on a required socket: %v", err)
	}
	cfg.PushSocketRequired = false
	second, err := NewHost(cfg)
	if err != nil {
		t.Fatalf("second agent on the default socket: %v", err)
	}
	if second.PushSocket() != "" {
		t.Errorf("second agent holds push socket %q", second.PushSocket())
	}
}

// TestHostTLSFiles: unreadable or empty TLS files are errors of the setting
// that names them.
func TestHostTLSFiles(t *testing.T) {
	cfg := fixtureConfig(t, "127.0.0.1:1")
	cfg.PushSocket = ""
	cfg.TLSCA = filepath.Join(t.TempDir(), "missing.pem")
	_, err := NewHost(cfg)
	var se *config.SettingError
	if !errors.As(err, &se) || se.Setting != "tls-ca" || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing CA file: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(empty, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.TLSCA = empty
	if _, err := NewHost(cfg); err == nil || !strings.Contains(err.Error(), "tls-ca "+empty+": no PEM certificate found") {
		t.Fatalf("CA file without a certificate: %v", err)
	}
	cfg.TLSCA, cfg.TLSCert, cfg.TLSKey = "", empty, empty
	if _, err := NewHost(cfg); !errors.As(err, &se) || !strings.HasPrefix(err.Error(), "tls-cert/tls-key: ") {
		t.Fatalf("unusable client certificate: %v", err)
	}
}
