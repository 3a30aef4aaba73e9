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

// handleForget answers DELETE /api/machines/{id}: the machine leaves the
// live state, the registry and the alerts (see live.State.Forget); its
// stored history stays. 204 when done, 404 for an unknown machine.
func (s *Server) handleForget(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ok, err := s.opts.Live.Forget(id)
	switch {
	case !ok:
		writeError(w, http.StatusNotFound, "unknown machine")
	case err != nil:
		s.log.Error("forget machine: write registry", "machine", id, "err", err)
		writeError(w, http.StatusInternalServerError, "machine forgotten until the hub restarts: the machine registry could not be written (see the hub's log)")
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}
