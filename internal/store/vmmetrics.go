package store

import (
	vmstorage "github.com/VictoriaMetrics/VictoriaMetrics/lib/storage"
	"github.com/prometheus/client_golang/prometheus"
)

// vmCollector exports the VM raw tier's figures, read from the engine at
// each scrape.
type vmCollector struct {
	r                                    *vmRaw
	series, rows, bytes, parts, received *prometheus.Desc
}

func newVMCollector(r *vmRaw) *vmCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("sysmonstm_storage_raw_"+name, help, labels, nil)
	}
	return &vmCollector{
		r:        r,
		series:   d("series", "Series the raw tier (engine vm) knows: those with a sample in the last hour or so."),
		rows:     d("rows", "Samples the raw tier's engine holds, by where: memory (not yet in files), small or big parts.", "where"),
		bytes:    d("bytes", "Bytes of samples the raw tier's engine holds, by where.", "where"),
		parts:    d("parts", "Parts of the raw tier's engine, by where.", "where"),
		received: d("rows_received_total", "Samples the raw tier's engine was given."),
	}
}

func (c *vmCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.series, c.rows, c.bytes, c.parts, c.received} {
		ch <- d
	}
}

func (c *vmCollector) Collect(ch chan<- prometheus.Metric) {
	var m vmstorage.Metrics
	c.r.st.UpdateMetrics(&m)
	t := &m.TableMetrics
	ch <- prometheus.MustNewConstMetric(c.series, prometheus.GaugeValue, float64(c.r.NumSeries()))
	ch <- prometheus.MustNewConstMetric(c.received, prometheus.CounterValue, float64(m.RowsReceivedTotal))
	for _, w := range []struct {
		where              string
		rows, bytes, parts uint64
	}{
		{"memory", t.InmemoryRowsCount, t.InmemorySizeBytes, t.InmemoryPartsCount},
		{"small", t.SmallRowsCount, t.SmallSizeBytes, t.SmallPartsCount},
		{"big", t.BigRowsCount, t.BigSizeBytes, t.BigPartsCount},
	} {
		ch <- prometheus.MustNewConstMetric(c.rows, prometheus.GaugeValue, float64(w.rows), w.where)
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(w.bytes), w.where)
		ch <- prometheus.MustNewConstMetric(c.parts, prometheus.GaugeValue, float64(w.parts), w.where)
	}
}
