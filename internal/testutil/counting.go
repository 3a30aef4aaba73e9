package testutil

import (
	"net"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// CountingListener counts the Write calls on every connection it accepts
// in Writes: how many write(2) a server's connection handling takes.
type CountingListener struct {
	net.Listener
	Writes *atomic.Int64
}

func (l CountingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.Writes}, nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// Histogram returns the sample count and sum of the histogram name's series
// whose label has value, as g gathers it; it fails t when there is none.
func Histogram(t testing.TB, g prometheus.Gatherer, name, label, value string) (uint64, float64) {
	t.Helper()
	h := gathered(t, g, name, label, value).GetHistogram()
	return h.GetSampleCount(), h.GetSampleSum()
}

// Counter returns the value of the counter name's series whose label has
// value, as g gathers it; it fails t when there is none.
func Counter(t testing.TB, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	return gathered(t, g, name, label, value).GetCounter().GetValue()
}

func gathered(t testing.TB, g prometheus.Gatherer, name, label, value string) *dto.Metric {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m
				}
			}
		}
	}
	t.Fatalf("%s{%s=%q} not registered", name, label, value)
	return nil
}
