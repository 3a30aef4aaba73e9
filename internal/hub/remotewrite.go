package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"golang.org/x/sync/errgroup"

	"github.com/sysmonstm/sysmonstm/internal/config"
	"github.com/sysmonstm/sysmonstm/internal/ingest"
	"github.com/sysmonstm/sysmonstm/internal/remotewrite"
	"github.com/sysmonstm/sysmonstm/internal/store"
)

// RemoteWriteConfig forwards every sample the hub stores to Prometheus
// remote-write receivers, each through a durable queue under
// DataDir/remote-write.
type RemoteWriteConfig struct {
	Targets []remotewrite.Target
	// MaxQueueBytes caps each target's queue on disk; beyond it the oldest
	// unsent samples are dropped (and counted). 0 =
	// remotewrite.DefaultMaxQueueBytes.
	MaxQueueBytes int64
}

// validate checks the targets: absolute http(s) URLs, distinct once
// redacted, readable credential files.
func (c RemoteWriteConfig) validate() error {
	seen := map[string]bool{}
	for _, t := range c.Targets {
		u, err := url.Parse(t.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &config.SettingError{Setting: "remote-write", Value: fmt.Sprintf("%q", t.Redacted()),
				Reason: "want an absolute http(s) URL such as http://victoria:8428/api/v1/write"}
		}
		if seen[t.Redacted()] {
			return &config.SettingError{Setting: "remote-write", Value: t.Redacted(), Reason: "given twice"}
		}
		seen[t.Redacted()] = true
		if err := readableFiles("remote-write-bearer-token-file", t.BearerTokenFile, "remote-write-basic-auth-file", t.BasicAuthFile); err != nil {
			return err
		}
		if t.BearerTokenFile != "" && t.BasicAuthFile != "" {
			return &config.SettingError{Setting: "remote-write", Value: t.Redacted(),
				Reason: "give {remote-write-bearer-token-file} or {remote-write-basic-auth-file}, not both"}
		}
	}
	if c.MaxQueueBytes != 0 && c.MaxQueueBytes < remotewrite.MinMaxQueueBytes {
		return &config.SettingError{Setting: "remote-write-max-queue-bytes", Value: fmt.Sprint(c.MaxQueueBytes),
			Reason: fmt.Sprintf("must be at least %d (1 MiB)", remotewrite.MinMaxQueueBytes)}
	}
	return nil
}

// remoteWritePart holds the queues and senders of the remote-write targets.
type remoteWritePart struct {
	queues  []*remotewrite.Queue
	senders []*remotewrite.Sender
	tee     *remotewrite.Tee
}

// QueueDir is the directory of a remote-write target's queue under a
// hub's data dir: remote-write/ and the first 16 hex digits of the
// SHA-256 of its URL. The directory's "url" file names the target
// (redacted).
func QueueDir(dataDir, targetURL string) string {
	sum := sha256.Sum256([]byte(targetURL))
	return filepath.Join(dataDir, "remote-write", hex.EncodeToString(sum[:8]))
}

// setupRemoteWrite opens each target's queue and builds its sender.
func (h *Hub) setupRemoteWrite() error {
	c := h.cfg.RemoteWrite
	if len(c.Targets) == 0 {
		return nil
	}
	m := remotewrite.NewMetrics(h.reg)
	log := h.log.With("component", "remotewrite")
	for _, t := range c.Targets {
		dir := QueueDir(h.cfg.DataDir, t.URL)
		q, err := remotewrite.OpenQueue(remotewrite.QueueOptions{Dir: dir, MaxBytes: c.MaxQueueBytes, Logger: log.With("url", t.Redacted())})
		if err != nil {
			return fmt.Errorf("remote write to %s: %w", t.Redacted(), err)
		}
		h.rw.queues = append(h.rw.queues, q)
		if err := os.WriteFile(filepath.Join(dir, "url"), []byte(t.Redacted()+"\n"), 0o640); err != nil {
			return fmt.Errorf("remote write to %s: %w", t.Redacted(), err)
		}
		h.rw.senders = append(h.rw.senders, remotewrite.NewSender(remotewrite.SenderOptions{
			Target: t, Queue: q, Logger: log, Metrics: m,
		}))
		if st := q.Stats(); st.PendingSamples > 0 {
			log.Info("remote write: resuming with queued samples", "url", t.Redacted(), "samples", st.PendingSamples, "bytes", st.PendingBytes)
		}
	}
	targets := c.Targets
	h.rw.tee = remotewrite.NewTee(h.rw.queues, log, func(i, n int) { m.EnqueueFailed(targets[i], n) })
	return nil
}

// storage is what ingest writes to: the store, its commits teed into the
// remote-write queues when there are targets.
func (h *Hub) storage() ingest.Storage {
	if h.rw.tee == nil {
		return h.store
	}
	return teeStorage{Store: h.store, tee: h.rw.tee}
}

// teeStorage is the store whose appenders also queue for remote write.
type teeStorage struct {
	*store.Store
	tee *remotewrite.Tee
}

func (s teeStorage) Appender(ctx context.Context) store.Appender {
	return s.tee.Wrap(s.Store.Appender(ctx))
}

// runRemoteWrite starts the senders.
func (h *Hub) runRemoteWrite(ctx context.Context, g *errgroup.Group) {
	for _, s := range h.rw.senders {
		g.Go(func() error { return s.Run(ctx) })
	}
}

// closeRemoteWrite closes the queues (after ingest has stopped).
func (h *Hub) closeRemoteWrite() {
	for _, q := range h.rw.queues {
		if err := q.Close(); err != nil {
			h.log.Error("close remote-write queue", "err", err)
		}
	}
	h.rw.queues = nil
}

// readableFiles checks that each file of the (setting, path) pairs given
// (a path "" is not given) can be read.
func readableFiles(settingPaths ...string) error {
	for i := 0; i+1 < len(settingPaths); i += 2 {
		key, path := settingPaths[i], settingPaths[i+1]
		if path == "" {
			continue
		}
		if _, err := os.ReadFile(path); err != nil {
			return &config.SettingError{Setting: key, Value: path, Reason: "cannot read it", Err: err}
		}
	}
	return nil
}
