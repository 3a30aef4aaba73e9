package alert

import (
	"context"
	"fmt"
	"time"
)

// metaDefaultsCreated marks that the built-in rules were created once; a
// deleted built-in rule is never brought back.
const metaDefaultsCreated = "defaults_created"

// DefaultRules are the rules created on a hub's first start (see
// docs/alerts.md). They are ordinary rules marked builtin: editable,
// disableable, deletable.
func DefaultRules() []Rule {
	r := func(id, name, metric string, matchers map[string]string, op string, th float64, forDur time.Duration, sev, desc string) Rule {
		return Rule{
			ID: id, Name: name, Kind: KindThreshold, Metric: metric, Matchers: matchers,
			Op: op, Threshold: th, For: forDur, Aggregation: AggLast, Severity: sev,
			Description: desc, Enabled: true, Builtin: true,
		}
	}
	return []Rule{
		r("builtin-cpu-high", "CPU usage high", "cpu_usage_percent", map[string]string{"cpu": "total"}, ">", 90, 5*time.Minute, SeverityWarning,
			"CPU usage on {{machine}} is {{value}} % (above {{threshold}} % for {{for}})"),
		r("builtin-memory-high", "Memory usage high", "memory_usage_percent", nil, ">", 90, 5*time.Minute, SeverityWarning,
			"Memory usage on {{machine}} is {{value}} % (above {{threshold}} % for {{for}})"),
		r("builtin-filesystem-full", "Filesystem almost full", "filesystem_usage_percent", nil, ">", 90, 5*time.Minute, SeverityWarning,
			"Filesystem {{labels.mountpoint}} ({{labels.device}}) on {{machine}} is {{value}} % full"),
		r("builtin-filesystem-critical", "Filesystem full", "filesystem_usage_percent", nil, ">", 95, 5*time.Minute, SeverityCritical,
			"Filesystem {{labels.mountpoint}} ({{labels.device}}) on {{machine}} is {{value}} % full"),
		{
			ID: "builtin-machine-offline", Name: "Machine offline", Kind: KindOffline, For: time.Minute,
			Severity: SeverityCritical, Enabled: true, Builtin: true,
			Description: "{{machine}} sent no data for {{for}}",
		},
		r("builtin-smart-failed", "Disk SMART health failed", "smart_health_passed", nil, "<", 1, 0, SeverityCritical,
			"SMART health check of {{labels.device}} ({{labels.model}}) on {{machine}} failed"),
		r("builtin-nvme-wear", "NVMe drive worn", "nvme_wear_percent", nil, ">", 80, 0, SeverityWarning,
			"NVMe drive {{labels.device}} ({{labels.model}}) on {{machine}} has used {{value}} % of its rated endurance"),
		r("builtin-systemd-failed", "systemd unit failed", "systemd_unit_failed", nil, ">=", 1, time.Minute, SeverityWarning,
			"systemd unit {{labels.unit}} on {{machine}} is in the failed state"),
	}
}

// createDefaults inserts the default rules on the first start only.
func (e *Engine) createDefaults(ctx context.Context) error {
	_, done, err := getMeta(ctx, e.db, metaDefaultsCreated)
	if err != nil || done {
		return err
	}
	now := e.now().UTC().Truncate(time.Millisecond)
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	for _, r := range DefaultRules() {
		if err := r.normalize(); err != nil {
			return fmt.Errorf("default rule %s: %w", r.ID, err)
		}
		r.CreatedAt, r.UpdatedAt = now, now
		// An id already taken (e.g. by the provisioning file) stays as it is.
		var exists int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM alert_rules WHERE id = ?`, r.ID).Scan(&exists); err != nil {
			return fmt.Errorf("create default rules: %w", err)
		}
		if exists > 0 {
			continue
		}
		if err := saveRule(ctx, tx, r); err != nil {
			return err
		}
	}
	if err := setMeta(ctx, tx, metaDefaultsCreated, now.Format(time.RFC3339)); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create default rules: %w", err)
	}
	e.log.Info("default alert rules created", "rules", len(DefaultRules()))
	return nil
}
