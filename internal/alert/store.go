package alert

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	metadb "github.com/sysmonstm/sysmonstm/internal/db"
)

// migrations are the alert component's schema steps (append only). Bodies
// are JSON; columns exist for filtering.
var migrations = []string{
	`CREATE TABLE alert_rules (
		id          TEXT PRIMARY KEY,
		body        TEXT NOT NULL,
		provisioned INTEGER NOT NULL DEFAULT 0,
		builtin     INTEGER NOT NULL DEFAULT 0
	);
	CREATE TABLE alert_notifiers (
		id          TEXT PRIMARY KEY,
		body        TEXT NOT NULL,
		provisioned INTEGER NOT NULL DEFAULT 0,
		created_at  INTEGER NOT NULL,
		updated_at  INTEGER NOT NULL
	);
	CREATE TABLE alerts (
		id          TEXT PRIMARY KEY,
		rule_id     TEXT NOT NULL,
		machine     TEXT NOT NULL,
		severity    TEXT NOT NULL,
		state       TEXT NOT NULL,
		started_at  INTEGER NOT NULL,
		resolved_at INTEGER,
		body        TEXT NOT NULL
	);
	CREATE INDEX alerts_state_resolved ON alerts(state, resolved_at);
	CREATE TABLE alert_silences (
		id      TEXT PRIMARY KEY,
		ends_at INTEGER NOT NULL,
		body    TEXT NOT NULL
	);
	CREATE TABLE alert_meta (
		key   TEXT PRIMARY KEY,
		value TEXT NOT NULL
	);`,
}

// pgMigrations are migrations for PostgreSQL: the same tables (flags are
// BOOLEAN, times BIGINT unix milliseconds) and triggers that NOTIFY the
// other hubs (db.Watch) of rule, notifier, silence and alert changes. The
// two lists are versioned apart (a database is one or the other): a schema
// change appends a step to each.
var pgMigrations = []string{
	`CREATE TABLE alert_rules (
		id          TEXT PRIMARY KEY,
		body        TEXT NOT NULL,
		provisioned BOOLEAN NOT NULL DEFAULT false,
		builtin     BOOLEAN NOT NULL DEFAULT false
	);
	CREATE TABLE alert_notifiers (
		id          TEXT PRIMARY KEY,
		body        TEXT NOT NULL,
		provisioned BOOLEAN NOT NULL DEFAULT false,
		created_at  BIGINT NOT NULL,
		updated_at  BIGINT NOT NULL
	);
	CREATE TABLE alerts (
		id          TEXT PRIMARY KEY,
		rule_id     TEXT NOT NULL,
		machine     TEXT NOT NULL,
		severity    TEXT NOT NULL,
		state       TEXT NOT NULL,
		started_at  BIGINT NOT NULL,
		resolved_at BIGINT,
		body        TEXT NOT NULL
	);
	CREATE INDEX alerts_state_resolved ON alerts(state, resolved_at);
	CREATE TABLE alert_silences (
		id      TEXT PRIMARY KEY,
		ends_at BIGINT NOT NULL,
		body    TEXT NOT NULL
	);
	CREATE TABLE alert_meta (
		key   TEXT PRIMARY KEY,
		value TEXT NOT NULL
	);
	` + metadb.PGNotifyFunction + `
	CREATE TRIGGER alert_rules_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON alert_rules
		FOR EACH STATEMENT EXECUTE FUNCTION sysmonstm_notify();
	CREATE TRIGGER alert_notifiers_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON alert_notifiers
		FOR EACH STATEMENT EXECUTE FUNCTION sysmonstm_notify();
	CREATE TRIGGER alert_silences_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON alert_silences
		FOR EACH STATEMENT EXECUTE FUNCTION sysmonstm_notify();`,
	// Acknowledgements made on another hub (acknowledgeElsewhere) reach
	// the hub evaluating the alert.
	`CREATE TRIGGER alerts_notify AFTER UPDATE ON alerts
		FOR EACH STATEMENT EXECUTE FUNCTION sysmonstm_notify();`,
	// Several hubs: followers follow every change of the leader's alerts
	// (Follow), and the notification outbox (outbox.go). SQLite has one hub
	// and neither.
	`DROP TRIGGER alerts_notify ON alerts;
	CREATE TRIGGER alerts_notify AFTER INSERT OR UPDATE OR DELETE ON alerts
		FOR EACH STATEMENT EXECUTE FUNCTION sysmonstm_notify();
	CREATE TABLE alert_outbox (
		id          TEXT PRIMARY KEY,
		notifier_id TEXT NOT NULL,
		alert_id    TEXT NOT NULL,
		created_at  BIGINT NOT NULL,
		done_at     BIGINT,
		result      TEXT,
		body        TEXT NOT NULL
	);
	CREATE INDEX alert_outbox_open ON alert_outbox(created_at) WHERE done_at IS NULL;`,
}

func migrate(ctx context.Context, d *sql.DB) error {
	return metadb.Migrate(ctx, d, "alert", metadb.ForDialect(d, migrations, pgMigrations))
}

func loadRules(ctx context.Context, d *sql.DB) ([]Rule, error) {
	rows, err := d.QueryContext(ctx, `SELECT id, body FROM alert_rules ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("load alert rules: %w", err)
	}
	defer rows.Close()
	var out []Rule
	for rows.Next() {
		var id, body string
		if err := rows.Scan(&id, &body); err != nil {
			return nil, fmt.Errorf("load alert rules: %w", err)
		}
		r, err := DecodeRule([]byte(body))
		if err != nil {
			return nil, fmt.Errorf("load alert rule %s: stored rule is invalid: %w", id, err)
		}
		r.ID = id
		out = append(out, r)
	}
	return out, rows.Err()
}

// execer is *sql.DB or *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func saveRule(ctx context.Context, d execer, r Rule) error {
	body, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode rule %s: %w", r.ID, err)
	}
	_, err = d.ExecContext(ctx, `INSERT INTO alert_rules(id, body, provisioned, builtin) VALUES(?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET body = excluded.body, provisioned = excluded.provisioned, builtin = excluded.builtin`,
		r.ID, string(body), r.Provisioned, r.Builtin)
	if err != nil {
		return fmt.Errorf("save rule %s: %w", r.ID, err)
	}
	return nil
}

func deleteRow(ctx context.Context, d execer, table, id string) error {
	if _, err := d.ExecContext(ctx, `DELETE FROM `+table+` WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete %s from %s: %w", id, table, err)
	}
	return nil
}

func loadNotifiers(ctx context.Context, d *sql.DB) ([]Notifier, error) {
	rows, err := d.QueryContext(ctx, `SELECT id, body, provisioned, created_at, updated_at FROM alert_notifiers ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("load notifiers: %w", err)
	}
	defer rows.Close()
	var out []Notifier
	for rows.Next() {
		var id, body string
		var n Notifier
		var created, updated int64
		if err := rows.Scan(&id, &body, &n.Provisioned, &created, &updated); err != nil {
			return nil, fmt.Errorf("load notifiers: %w", err)
		}
		if err := json.Unmarshal([]byte(body), &n.Config); err != nil {
			return nil, fmt.Errorf("load notifier %s: %w", id, err)
		}
		n.Config.ID = id
		n.CreatedAt, n.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
		out = append(out, n)
	}
	return out, rows.Err()
}

func saveNotifier(ctx context.Context, d execer, n Notifier) error {
	body, err := json.Marshal(n.Config)
	if err != nil {
		return fmt.Errorf("encode notifier %s: %w", n.Config.ID, err)
	}
	_, err = d.ExecContext(ctx, `INSERT INTO alert_notifiers(id, body, provisioned, created_at, updated_at) VALUES(?, ?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET body = excluded.body, provisioned = excluded.provisioned, updated_at = excluded.updated_at`,
		n.Config.ID, string(body), n.Provisioned, n.CreatedAt.UnixMilli(), n.UpdatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("save notifier %s: %w", n.Config.ID, err)
	}
	return nil
}

// alertRow is one alert to write: upserted, or deleted (a pending alert
// that never fired).
type alertRow struct {
	deleted bool
	body    storedAlert
}

// txBeginner is *sql.DB or *sql.Conn.
type txBeginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// writeAlerts writes alert rows and the outbox entries of their
// notifications in one transaction.
func writeAlerts(ctx context.Context, d txBeginner, rows []alertRow, outbox []*outboxEntry) error {
	if len(rows) == 0 && len(outbox) == 0 {
		return nil
	}
	tx, err := d.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	for _, r := range rows {
		a := &r.body.Alert
		if r.deleted {
			if err := deleteRow(ctx, tx, "alerts", a.ID); err != nil {
				return err
			}
			continue
		}
		body, err := json.Marshal(r.body)
		if err != nil {
			return fmt.Errorf("encode alert %s: %w", a.ID, err)
		}
		var resolved any
		if a.ResolvedAt != nil {
			resolved = a.ResolvedAt.UnixMilli()
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO alerts(id, rule_id, machine, severity, state, started_at, resolved_at, body)
			VALUES(?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(id) DO UPDATE SET severity = excluded.severity, state = excluded.state,
				resolved_at = excluded.resolved_at, body = excluded.body`,
			a.ID, a.RuleID, a.Machine, a.Severity, a.State, a.StartedAt.UnixMilli(), resolved, string(body)); err != nil {
			return fmt.Errorf("save alert %s: %w", a.ID, err)
		}
	}
	if err := writeOutbox(ctx, tx, outbox); err != nil {
		return err
	}
	return tx.Commit()
}

func loadActiveAlerts(ctx context.Context, d *sql.DB) ([]*record, error) {
	rows, err := d.QueryContext(ctx, `SELECT body FROM alerts WHERE state IN ('pending', 'firing')`)
	if err != nil {
		return nil, fmt.Errorf("load active alerts: %w", err)
	}
	defer rows.Close()
	var out []*record
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("load active alerts: %w", err)
		}
		var s storedAlert
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			return nil, fmt.Errorf("load active alerts: %w", err)
		}
		out = append(out, recordFromStored(s))
	}
	return out, rows.Err()
}

// alertFilter selects stored alerts.
type alertFilter struct {
	states   []string
	machine  string
	rule     string
	severity string
	limit    int
}

func queryAlerts(ctx context.Context, d *sql.DB, f alertFilter) ([]Alert, error) {
	var where []string
	var args []any
	if len(f.states) > 0 {
		where = append(where, "state IN (?"+strings.Repeat(", ?", len(f.states)-1)+")")
		for _, s := range f.states {
			args = append(args, s)
		}
	}
	for _, c := range []struct{ col, v string }{{"machine", f.machine}, {"rule_id", f.rule}, {"severity", f.severity}} {
		if c.v != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	q := `SELECT body FROM alerts`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY COALESCE(resolved_at, started_at) DESC, id LIMIT ?`
	args = append(args, f.limit)
	rows, err := d.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query alerts: %w", err)
	}
	defer rows.Close()
	var out []Alert
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("query alerts: %w", err)
		}
		var s storedAlert
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			return nil, fmt.Errorf("query alerts: %w", err)
		}
		out = append(out, s.Alert)
	}
	return out, rows.Err()
}

func getAlert(ctx context.Context, d *sql.DB, id string) (Alert, error) {
	s, err := getAlertBody(ctx, d, id)
	return s.Alert, err
}

func getAlertBody(ctx context.Context, d *sql.DB, id string) (storedAlert, error) {
	var body string
	err := d.QueryRowContext(ctx, `SELECT body FROM alerts WHERE id = ?`, id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return storedAlert{}, notFound("alert %q", id)
	}
	if err != nil {
		return storedAlert{}, fmt.Errorf("read alert %s: %w", id, err)
	}
	var s storedAlert
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		return storedAlert{}, fmt.Errorf("read alert %s: %w", id, err)
	}
	return s, nil
}

func loadSilences(ctx context.Context, d *sql.DB) ([]*Silence, error) {
	rows, err := d.QueryContext(ctx, `SELECT body FROM alert_silences`)
	if err != nil {
		return nil, fmt.Errorf("load silences: %w", err)
	}
	defer rows.Close()
	var out []*Silence
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("load silences: %w", err)
		}
		s := &Silence{}
		if err := json.Unmarshal([]byte(body), s); err != nil {
			return nil, fmt.Errorf("load silences: %w", err)
		}
		s.compile()
		out = append(out, s)
	}
	return out, rows.Err()
}

func saveSilence(ctx context.Context, d execer, s *Silence) error {
	body, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode silence %s: %w", s.ID, err)
	}
	_, err = d.ExecContext(ctx, `INSERT INTO alert_silences(id, ends_at, body) VALUES(?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET ends_at = excluded.ends_at, body = excluded.body`,
		s.ID, s.EndsAt.UnixMilli(), string(body))
	if err != nil {
		return fmt.Errorf("save silence %s: %w", s.ID, err)
	}
	return nil
}

// querier is *sql.DB or *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func getMeta(ctx context.Context, d querier, key string) (string, bool, error) {
	var v string
	err := d.QueryRowContext(ctx, `SELECT value FROM alert_meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read alert setting %s: %w", key, err)
	}
	return v, true, nil
}

func setMeta(ctx context.Context, d execer, key, value string) error {
	_, err := d.ExecContext(ctx, `INSERT INTO alert_meta(key, value) VALUES(?, ?)
		ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("write alert setting %s: %w", key, err)
	}
	return nil
}

// prune deletes resolved alerts and silences that ended before the
// retention.
func (e *Engine) prune(ctx context.Context, now time.Time) error {
	cut := now.Add(-e.opts.Retention)
	res, err := e.db.ExecContext(ctx, `DELETE FROM alerts WHERE state = 'resolved' AND resolved_at < ?`, cut.UnixMilli())
	if err != nil {
		return err
	}
	n, _ := res.RowsAffected()
	if _, err := e.db.ExecContext(ctx, `DELETE FROM alert_silences WHERE ends_at < ?`, cut.UnixMilli()); err != nil {
		return err
	}
	if e.shared {
		if _, err := e.db.ExecContext(ctx, `DELETE FROM alert_outbox WHERE done_at < ?`, cut.UnixMilli()); err != nil {
			return err
		}
	}
	e.mu.Lock()
	for id, s := range e.silences {
		if s.EndsAt.Before(cut) {
			delete(e.silences, id)
		}
	}
	e.mu.Unlock()
	if n > 0 {
		e.log.Info("pruned alert history", "alerts", n, "older_than", cut)
	}
	return nil
}
