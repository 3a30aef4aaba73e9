package collect

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// DefaultSmartInterval is how often smartctl runs.
const DefaultSmartInterval = 10 * time.Minute

// smartDevice is one entry of `smartctl --scan-open --json`.
type smartDevice struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	OpenError string `json:"open_error"`
}

// parseSmartScan returns the devices smartctl could open.
func parseSmartScan(b []byte) ([]smartDevice, error) {
	var out struct {
		Devices []smartDevice `json:"devices"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("smartctl --scan-open: %w", err)
	}
	devs := out.Devices[:0]
	for _, d := range out.Devices {
		if d.Name != "" && d.OpenError == "" {
			devs = append(devs, d)
		}
	}
	return devs, nil
}

// smartReport is the part of `smartctl --json --all` the collector uses.
type smartReport struct {
	Smartctl struct {
		ExitStatus int `json:"exit_status"`
	} `json:"smartctl"`
	Device struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"device"`
	ModelName   string `json:"model_name"`
	SmartStatus *struct {
		Passed bool `json:"passed"`
	} `json:"smart_status"`
	Temperature *struct {
		Current *float64 `json:"current"`
	} `json:"temperature"`
	PowerOnTime *struct {
		Hours   float64 `json:"hours"`
		Minutes float64 `json:"minutes"`
	} `json:"power_on_time"`
	NVMe *struct {
		CriticalWarning *float64 `json:"critical_warning"`
		AvailableSpare  *float64 `json:"available_spare"`
		PercentageUsed  *float64 `json:"percentage_used"`
		MediaErrors     *float64 `json:"media_errors"`
	} `json:"nvme_smart_health_information_log"`
	ATA *struct {
		Table []struct {
			ID  int `json:"id"`
			Raw struct {
				Value float64 `json:"value"`
			} `json:"raw"`
		} `json:"table"`
	} `json:"ata_smart_attributes"`
}

// smartDeviceLabel turns "/dev/sda" into "sda" and keeps the type of
// devices behind a controller ("bus/0 megaraid,1").
func smartDeviceLabel(name, typ string) string {
	dev := strings.TrimPrefix(name, "/dev/")
	if strings.Contains(typ, ",") {
		dev += " " + typ
	}
	return dev
}

// parseSmartReport turns one device's smartctl JSON into samples. smartctl
// sets exit status bits for failing disks but still prints the report;
// only bits 0 and 1 (bad command line, device open failed) mean there is
// no report.
func parseSmartReport(b []byte, dev smartDevice) ([]metric.Sample, error) {
	var r smartReport
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("smartctl %s: %w", dev.Name, err)
	}
	if r.Smartctl.ExitStatus&3 != 0 {
		return nil, fmt.Errorf("smartctl %s: exit status %d", dev.Name, r.Smartctl.ExitStatus)
	}
	ls := metric.Labels{{Name: "device", Value: smartDeviceLabel(dev.Name, dev.Type)}, {Name: "model", Value: r.ModelName}}
	var out []metric.Sample
	add := func(name string, v float64) {
		out = append(out, metric.Sample{Name: name, Labels: ls, Value: v})
	}
	if r.SmartStatus != nil {
		add("smart_health_passed", b01(r.SmartStatus.Passed))
	}
	if r.Temperature != nil && r.Temperature.Current != nil {
		add("smart_temperature_celsius", *r.Temperature.Current)
	}
	if p := r.PowerOnTime; p != nil {
		add("smart_power_on_seconds", p.Hours*3600+p.Minutes*60)
	}
	if n := r.NVMe; n != nil {
		opt := func(name string, v *float64) {
			if v != nil {
				add(name, *v)
			}
		}
		opt("nvme_wear_percent", n.PercentageUsed)
		opt("nvme_available_spare_percent", n.AvailableSpare)
		opt("nvme_media_errors_total", n.MediaErrors)
		opt("nvme_critical_warning", n.CriticalWarning)
	}
	if r.ATA != nil {
		for _, a := range r.ATA.Table {
			switch a.ID {
			case 5:
				add("smart_reallocated_sectors", a.Raw.Value)
			case 197:
				add("smart_pending_sectors", a.Raw.Value)
			case 198:
				add("smart_offline_uncorrectable_sectors", a.Raw.Value)
			}
		}
	}
	return out, nil
}

// Smart reports disk health from smartctl (smartmontools) every Interval,
// in the background: the cached values are emitted every tick. A host
// without smartctl, or where it cannot open any device (not root), yields
// nothing.
type Smart struct {
	Smartctl string  // path of smartctl; "" disables the collector
	run      runFunc // execRun; tests substitute fixture output
	src      *slowSource[[]metric.Sample]
	prev     map[string][]metric.Sample // last report per device, kept while a disk sleeps; owned by the fetch
}

// NewSmart returns the SMART collector.
func NewSmart(opts Options) *Smart {
	opts = opts.withDefaults()
	c := &Smart{Smartctl: lookPath("smartctl"), run: execRun, prev: map[string][]metric.Sample{}}
	c.src = &slowSource[[]metric.Sample]{interval: opts.SmartInterval, timeout: 2 * time.Minute,
		fetch: c.fetch, log: opts.Logger, what: "smartctl"}
	return c
}

// Name implements Collector.
func (*Smart) Name() string { return "smart" }

// Collect implements Collector.
func (c *Smart) Collect(_ context.Context, b *Batch) error {
	if c.Smartctl == "" {
		return nil
	}
	if ss, ok, _ := c.src.get(); ok {
		b.Samples = append(b.Samples, ss...)
	}
	return nil
}

func (c *Smart) fetch(ctx context.Context) ([]metric.Sample, error) {
	out, err := c.run(ctx, c.Smartctl, "--scan-open", "--json")
	if len(out) == 0 && err != nil {
		return nil, fmt.Errorf("smartctl --scan-open: %w", err)
	}
	devs, err := parseSmartScan(out)
	if err != nil {
		return nil, err
	}
	var all []metric.Sample
	seen := map[string]bool{}
	for _, d := range devs {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		argv := []string{c.Smartctl, "--json", "--all", "--nocheck=standby"}
		if d.Type != "" {
			argv = append(argv, "--device="+d.Type)
		}
		argv = append(argv, d.Name)
		rep, _ := c.run(ctx, argv...)
		ss, err := parseSmartReport(rep, d)
		if err != nil || len(ss) == 0 {
			ss = c.prev[d.Name] // asleep (--nocheck=standby) or unreadable: keep the last report
		}
		c.prev[d.Name] = ss
		seen[d.Name] = true
		all = append(all, ss...)
	}
	for k := range c.prev {
		if !seen[k] {
			delete(c.prev, k)
		}
	}
	return all, nil
}
