package alert

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/notify"
)

// The notification outbox (PostgreSQL only): every alert change the leader
// routes to a channel is a row of alert_outbox, written in the same
// transaction as the alert's row, and a message is handed to its channel
// only once all its rows are written. A delivered (or given up) message
// marks its rows done. A new leader sends the rows that are not done, so a
// leader's death neither loses a notification nor, unless it died between
// the channel's answer and the mark, repeats one.

// outboxEntry is one alert change for one channel.
type outboxEntry struct {
	id       string
	notifier string
	alert    notify.Alert
	created  time.Time
	written  bool // the row is in the database; protected by Engine.mu
}

// writeOutbox inserts entries (in the flush's transaction).
func writeOutbox(ctx context.Context, tx execer, entries []*outboxEntry) error {
	for _, ent := range entries {
		body, err := json.Marshal(ent.alert)
		if err != nil {
			return fmt.Errorf("encode notification %s: %w", ent.id, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO alert_outbox(id, notifier_id, alert_id, created_at, body) VALUES(?, ?, ?, ?, ?)
			ON CONFLICT(id) DO NOTHING`, ent.id, ent.notifier, ent.alert.ID, ent.created.UnixMilli(), string(body)); err != nil {
			return fmt.Errorf("record notification %s: %w", ent.id, err)
		}
	}
	return nil
}

// loadOutbox reads the entries not yet done, oldest first.
func loadOutbox(ctx context.Context, d *sql.DB) ([]*outboxEntry, error) {
	rows, err := d.QueryContext(ctx, `SELECT id, notifier_id, created_at, body FROM alert_outbox WHERE done_at IS NULL ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("load notification outbox: %w", err)
	}
	defer rows.Close()
	var out []*outboxEntry
	for rows.Next() {
		ent := &outboxEntry{written: true}
		var created int64
		var body string
		if err := rows.Scan(&ent.id, &ent.notifier, &created, &body); err != nil {
			return nil, fmt.Errorf("load notification outbox: %w", err)
		}
		if err := json.Unmarshal([]byte(body), &ent.alert); err != nil {
			return nil, fmt.Errorf("load notification %s: %w", ent.id, err)
		}
		ent.created = time.UnixMilli(created).UTC()
		out = append(out, ent)
	}
	return out, rows.Err()
}

// markDone records the outcome of the entries ids ("sent", "failed",
// "unrouted").
func markDone(ctx context.Context, d *sql.DB, ids []string, result string, now time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	args := []any{now.UnixMilli(), result}
	for _, id := range ids {
		args = append(args, id)
	}
	_, err := d.ExecContext(ctx, `UPDATE alert_outbox SET done_at = ?, result = ? WHERE id IN (?`+strings.Repeat(", ?", len(ids)-1)+`)`, args...)
	if err != nil {
		return fmt.Errorf("mark %d notifications %s: %w", len(ids), result, err)
	}
	return nil
}

// countOutbox counts the entries not yet done.
func countOutbox(ctx context.Context, d *sql.DB) (int, error) {
	var n int
	err := d.QueryRowContext(ctx, `SELECT count(*) FROM alert_outbox WHERE done_at IS NULL`).Scan(&n)
	return n, err
}

// replayLocked hands the entries a previous leader did not send to their
// channels, one message per channel, before anything of this leader's.
// Caller holds e.mu.
func (e *Engine) replayLocked(open []*outboxEntry) {
	byNotifier := map[string][]*outboxEntry{}
	for _, ent := range open {
		byNotifier[ent.notifier] = append(byNotifier[ent.notifier], ent)
	}
	ids := make([]string, 0, len(byNotifier))
	for id := range byNotifier {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		g := &group{alerts: map[string]notify.Alert{}}
		for _, ent := range byNotifier[id] {
			g.alerts[ent.alert.ID] = ent.alert // the latest change of an alert wins
			g.entries = append(g.entries, ent)
		}
		e.log.Info("sending notifications the previous alert leader recorded but did not send", "notifier", id, "alerts", len(g.alerts))
		e.handOffLocked(id, g)
	}
}

// entryIDs lists the ids of a group's entries.
func entryIDs(entries []*outboxEntry) []string {
	ids := make([]string, len(entries))
	for i, ent := range entries {
		ids[i] = ent.id
	}
	return ids
}
