package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sysmonstm/sysmonstm/internal/notify"
)

// maxProvisioningBytes bounds the --alerts-config file.
const maxProvisioningBytes = 4 << 20

// provisioning is the parsed --alerts-config file.
type provisioning struct {
	path      string
	rules     []Rule
	notifiers []notify.Config
}

// loadProvisioning reads and validates the provisioning file: keys rules:
// and notifiers:, each a list of items with a unique id, in the API's JSON
// field names.
func loadProvisioning(path string) (*provisioning, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("alerts config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxProvisioningBytes+1))
	if err != nil {
		return nil, fmt.Errorf("alerts config %s: %w", path, err)
	}
	if len(b) > maxProvisioningBytes {
		return nil, fmt.Errorf("alerts config %s: larger than %d bytes", path, maxProvisioningBytes)
	}
	return parseProvisioning(path, b)
}

func parseProvisioning(path string, b []byte) (*provisioning, error) {
	var doc struct {
		Rules     []map[string]any `yaml:"rules"`
		Notifiers []map[string]any `yaml:"notifiers"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("alerts config %s: %w (the file has the keys rules: and notifiers:)", path, err)
	}
	p := &provisioning{path: path}
	ids := map[string]bool{}
	for i, item := range doc.Notifiers {
		where := fmt.Sprintf("alerts config %s: notifiers[%d]", path, i)
		js, err := json.Marshal(item)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		cfg, err := DecodeNotifier(js)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if !validID(cfg.ID) {
			return nil, fmt.Errorf("%s: id: required, 1–%d letters, digits, '-', '_' or '.'", where, maxIDLen)
		}
		if ids[cfg.ID] {
			return nil, fmt.Errorf("%s: id: %q is used twice", where, cfg.ID)
		}
		ids[cfg.ID] = true
		if err := cfg.Validate(); err != nil {
			return nil, fmt.Errorf("%s (id %q): %w", where, cfg.ID, err)
		}
		p.notifiers = append(p.notifiers, cfg)
	}
	ids = map[string]bool{}
	for i, item := range doc.Rules {
		where := fmt.Sprintf("alerts config %s: rules[%d]", path, i)
		for _, k := range []string{"builtin", "provisioned", "created_at", "updated_at"} {
			if _, ok := item[k]; ok {
				return nil, fmt.Errorf("%s: %s: set by the hub; leave it out", where, k)
			}
		}
		js, err := json.Marshal(item)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		r, err := DecodeRule(js)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if r.ID == "" {
			return nil, fmt.Errorf("%s: id: required in the provisioning file (it keys the rule across restarts)", where)
		}
		if ids[r.ID] {
			return nil, fmt.Errorf("%s: id: %q is used twice", where, r.ID)
		}
		ids[r.ID] = true
		r.Provisioned = true
		p.rules = append(p.rules, r)
	}
	return p, nil
}

// DecodeNotifier parses a notifier's JSON form (the notify.Config fields;
// "provisioned", "status", "created_at" and "updated_at" echoed back by
// clients are ignored); the error names the offending field. It does not
// validate the config: CreateNotifier and UpdateNotifier do.
func DecodeNotifier(b []byte) (notify.Config, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return notify.Config{}, jsonFieldError(err)
	}
	delete(probe, "provisioned")
	delete(probe, "status")
	delete(probe, "created_at")
	delete(probe, "updated_at")
	clean, err := json.Marshal(probe)
	if err != nil {
		return notify.Config{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(clean))
	dec.DisallowUnknownFields()
	var c notify.Config
	if err := dec.Decode(&c); err != nil {
		return notify.Config{}, jsonFieldError(err)
	}
	return c, nil
}

// syncProvisioning makes the database's provisioned rules and notifiers
// those of the file: added, updated, and removed when no longer listed. An
// item created through the API with the same id is taken over.
func (e *Engine) syncProvisioning(ctx context.Context, p *provisioning) error {
	oldRules, err := loadRules(ctx, e.db)
	if err != nil {
		return err
	}
	oldNots, err := loadNotifiers(ctx, e.db)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, n := range p.notifiers {
		known[n.ID] = true
	}
	for _, n := range oldNots {
		if !n.Provisioned {
			known[n.Config.ID] = true
		}
	}
	for _, r := range p.rules {
		for _, n := range r.Notifiers {
			if !known[n] {
				return fmt.Errorf("alerts config %s: rule %q: notifiers: unknown notifier %q (define it under notifiers: or through the API)", p.path, r.ID, n)
			}
		}
	}
	now := e.now().UTC().Truncate(time.Millisecond)
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()

	oldN := map[string]Notifier{}
	for _, n := range oldNots {
		oldN[n.Config.ID] = n
	}
	for _, cfg := range p.notifiers {
		n := Notifier{Config: cfg, Provisioned: true, CreatedAt: now, UpdatedAt: now}
		if old, ok := oldN[cfg.ID]; ok {
			if !old.Provisioned {
				e.log.Warn("alerts config takes over a notifier created through the API", "notifier", cfg.ID)
			}
			n.CreatedAt = old.CreatedAt
			if reflect.DeepEqual(old.Config, cfg) && old.Provisioned {
				n.UpdatedAt = old.UpdatedAt
			}
		}
		if err := saveNotifier(ctx, tx, n); err != nil {
			return err
		}
	}
	for _, old := range oldNots {
		if old.Provisioned && !containsNotifier(p.notifiers, old.Config.ID) {
			e.log.Info("provisioned notifier removed from the alerts config: deleted", "notifier", old.Config.ID)
			if err := deleteRow(ctx, tx, "alert_notifiers", old.Config.ID); err != nil {
				return err
			}
		}
	}

	oldR := map[string]Rule{}
	for _, r := range oldRules {
		oldR[r.ID] = r
	}
	for _, r := range p.rules {
		r.CreatedAt, r.UpdatedAt = now, now
		if old, ok := oldR[r.ID]; ok {
			if !old.Provisioned {
				e.log.Warn("alerts config takes over a rule created through the API", "rule", r.ID)
			}
			r.CreatedAt = old.CreatedAt
			if sameRule(old, r) {
				r.UpdatedAt = old.UpdatedAt
			}
		}
		if err := saveRule(ctx, tx, r); err != nil {
			return err
		}
	}
	for _, old := range oldRules {
		if old.Provisioned && !containsRule(p.rules, old.ID) {
			e.log.Info("provisioned rule removed from the alerts config: deleted", "rule", old.ID)
			if err := deleteRow(ctx, tx, "alert_rules", old.ID); err != nil {
				return err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("alerts config %s: %w", p.path, err)
	}
	e.log.Info("alerts config applied", "path", p.path, "rules", len(p.rules), "notifiers", len(p.notifiers))
	return nil
}

// sameRule compares two rules' definitions, ignoring their timestamps.
func sameRule(a, b Rule) bool {
	a.CreatedAt, a.UpdatedAt, b.CreatedAt, b.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

func containsNotifier(cs []notify.Config, id string) bool {
	for _, c := range cs {
		if c.ID == id {
			return true
		}
	}
	return false
}

func containsRule(rs []Rule, id string) bool {
	for _, r := range rs {
		if r.ID == id {
			return true
		}
	}
	return false
}
