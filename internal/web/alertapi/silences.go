package alertapi

import "net/http"

func (a *API) handleListSilences(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.silences.Silences())
}

func (a *API) handleGetSilence(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s, ok := a.silences.Silence(id)
	if !ok {
		writeNotFound(w, "silence", id)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (a *API) handleCreateSilence(w http.ResponseWriter, r *http.Request) {
	b, err := readBody(w, r, false)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	s, err := a.silences.CreateSilence(r.Context(), b, principal(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.logWrite(r, "silence created", "silence", s.ID, "ends_at", s.EndsAt)
	writeJSON(w, http.StatusCreated, s)
}

func (a *API) handleExpireSilence(w http.ResponseWriter, r *http.Request) {
	s, err := a.silences.ExpireSilence(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.logWrite(r, "silence expired", "silence", s.ID)
	writeJSON(w, http.StatusOK, s)
}
