package alert

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Each default rule is created once: on the first start that knows it, a
// marker (metaDefaultPrefix + id) is stored with it, and a rule whose
// marker exists is never created again, so a deleted default stays
// deleted and a default added by an upgrade appears once.
const metaDefaultPrefix = "default_rule:"

// metaDefaultsCreated is the single marker of hubs from before the
// per-rule markers: it stands for the rules in legacyDefaultIDs.
const metaDefaultsCreated = "defaults_created"

// legacyDefaultIDs are the default rules that existed while one marker
// (metaDefaultsCreated) covered them all.
var legacyDefaultIDs = []string{
	"builtin-cpu-high", "builtin-memory-high", "builtin-filesystem-full", "builtin-filesystem-critical",
	"builtin-machine-offline", "builtin-smart-failed", "builtin-nvme-wear", "builtin-systemd-failed",
}

// DefaultRules are the rules created when a hub first starts with them
// (see docs/alerts.md). They are ordinary rules marked builtin: editable,
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
		{
			ID: "builtin-container-restarting", Name: "Container restarting", Kind: KindThreshold,
			Metric: "container_restarts_total", Op: ">=", Threshold: 3, Aggregation: AggIncrease, Window: 15 * time.Minute,
			Severity: SeverityWarning, Enabled: true, Builtin: true,
			Description: "Container {{labels.container}} on {{machine}} restarted {{value}} times in the last {{window}}",
		},
	}
}

// createDefaults creates every default rule that has no marker yet (unless
// its id is taken, e.g. by the provisioning file) and marks it.
func (e *Engine) createDefaults(ctx context.Context) error {
	now := e.now().UTC().Truncate(time.Millisecond)
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create default rules: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	_, legacy, err := getMeta(ctx, tx, metaDefaultsCreated)
	if err != nil {
		return err
	}
	var created []string
	for _, r := range DefaultRules() {
		if legacy && slices.Contains(legacyDefaultIDs, r.ID) {
			continue
		}
		_, marked, err := getMeta(ctx, tx, metaDefaultPrefix+r.ID)
		if err != nil {
			return err
		}
		if marked {
			continue
		}
		if err := r.normalize(); err != nil {
			return fmt.Errorf("default rule %s: %w", r.ID, err)
		}
		r.CreatedAt, r.UpdatedAt = now, now
		var exists int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM alert_rules WHERE id = ?`, r.ID).Scan(&exists); err != nil {
			return fmt.Errorf("create default rules: %w", err)
		}
		if exists == 0 {
			if err := saveRule(ctx, tx, r); err != nil {
				return err
			}
			created = append(created, r.ID)
		}
		if err := setMeta(ctx, tx, metaDefaultPrefix+r.ID, now.Format(time.RFC3339)); err != nil {
			return err
		}
	}
	if !legacy {
		// Older hubs create every default rule while this marker is
		// missing; with it, a downgrade brings no deleted default back.
		if err := setMeta(ctx, tx, metaDefaultsCreated, now.Format(time.RFC3339)); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create default rules: %w", err)
	}
	if len(created) > 0 {
		e.log.Info("default alert rules created", "rules", created)
	}
	return nil
}
