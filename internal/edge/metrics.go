package edge

import "github.com/prometheus/client_golang/prometheus"

// registerMetrics exports the browser stream's counters on s.reg, next to
// the connection guards' sysmonstm_rejected_connections_total (GET
// /metrics). They read the same counters as GET /health.
func (s *Server) registerMetrics() {
	s.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sysmonstm_websocket_clients",
			Help: "Open browser streams (/ws), those being opened included.",
		}, func() float64 { return float64(s.clients.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sysmonstm_websocket_refused_clients_total",
			Help: "Browser streams refused because the edge held its most viewers.",
		}, func() float64 { return float64(s.refusedClients.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sysmonstm_websocket_dropped_clients_total",
			Help: "Browser streams cut because the browser took no data for the write timeout or fell behind.",
		}, func() float64 { return float64(s.droppedClients.Load()) }),
	)
}
