package web

import (
	"net/http"

	"github.com/sysmonstm/sysmonstm/internal/live"
)

// handleMachines answers GET /api/machines: every machine without its values.
func (s *Server) handleMachines(w http.ResponseWriter, _ *http.Request) {
	ms := s.opts.Live.Machines()
	for i := range ms {
		ms[i].Metrics = nil
	}
	if ms == nil {
		ms = []live.Machine{}
	}
	writeJSON(w, http.StatusOK, ms)
}

// handleMachine answers GET /api/machines/{id}: one machine with its latest
// values.
func (s *Server) handleMachine(w http.ResponseWriter, r *http.Request) {
	m, ok := s.opts.Live.Machine(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "unknown machine")
		return
	}
	if m.Metrics == nil {
		m.Metrics = []live.Value{}
	}
	writeJSON(w, http.StatusOK, m)
}
