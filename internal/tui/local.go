package tui

import (
	"context"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/collect"
	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// Local feeds the fleet from the core collectors running in this process:
// `sysmonstm top --local`, no hub.
type Local struct {
	ID       string // machine id shown (the hostname)
	Interval time.Duration
	Options  collect.Options
}

// Run collects every Interval until ctx ends.
func (l *Local) Run(ctx context.Context, f *Fleet) error {
	set := collect.NewDefault(l.Options)
	hi, _ := collect.ReadHostInfo(l.Options)
	id := l.ID
	if id == "" {
		id = hi.Hostname
	}
	f.Update(func(w FleetWriter) {
		m := w.Machine(id)
		m.SetMeta(hi.Hostname, nil, true, true, time.Now())
		m.Info = Info{
			OS: hi.OS, Platform: hi.Platform, Kernel: hi.KernelVersion, Arch: hi.Arch,
			CPUModel: hi.CPUModel, CPUCores: hi.CPUCores, CPUThreads: hi.CPUThreads,
			MemoryTotal: hi.MemoryTotalBytes, BootTime: hi.BootTime, IntervalMs: l.Interval.Milliseconds(),
		}.clean()
	})
	f.SetConn(ConnState{Connected: true})
	f.SetAlertsUnavailable("alerts come from a hub; --local has none")
	t := time.NewTicker(l.Interval)
	defer t.Stop()
	for {
		samples := set.Collect(ctx)
		f.Update(func(w FleetWriter) {
			m := w.Machine(id)
			m.LastSeen = time.Now()
			applySamples(m, samples)
		})
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// applySamples stores one collection's samples in m and closes the batch.
func applySamples(m *Machine, samples []metric.Sample) {
	var p point
	for i := range samples {
		s := &samples[i]
		p.reset()
		p.name = []byte(s.Name)
		p.value = s.Value
		for _, l := range s.Labels {
			p.setLabel([]byte(l.Name), []byte(l.Value))
		}
		m.apply(&p)
	}
	m.EndBatch()
}
