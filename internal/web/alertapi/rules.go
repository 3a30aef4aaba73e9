package alertapi

import (
	"net/http"

	"github.com/sysmonstm/sysmonstm/internal/alert"
)

func (a *API) handleListRules(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.rules.Rules())
}

func (a *API) handleGetRule(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rule, ok := a.rules.Rule(id)
	if !ok {
		writeNotFound(w, "rule", id)
		return
	}
	writeJSON(w, http.StatusOK, rule)
}

// decodeRuleRequest reads and validates a rule body.
func decodeRuleRequest(w http.ResponseWriter, r *http.Request) (alert.Rule, error) {
	b, err := readBody(w, r, false)
	if err != nil {
		return alert.Rule{}, err
	}
	return alert.DecodeRule(b)
}

func (a *API) handleCreateRule(w http.ResponseWriter, r *http.Request) {
	rule, err := decodeRuleRequest(w, r)
	if err == nil {
		rule, err = a.rules.CreateRule(r.Context(), rule)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.logWrite(r, "alert rule created", "rule", rule.ID, "name", rule.Name)
	writeJSON(w, http.StatusCreated, rule)
}

func (a *API) handleUpdateRule(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := a.rules.Rule(id); !ok {
		writeNotFound(w, "rule", id)
		return
	}
	rule, err := decodeRuleRequest(w, r)
	if err == nil {
		rule, err = a.rules.UpdateRule(r.Context(), id, rule)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.logWrite(r, "alert rule updated", "rule", rule.ID, "name", rule.Name)
	writeJSON(w, http.StatusOK, rule)
}

func (a *API) handleDeleteRule(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := a.rules.DeleteRule(r.Context(), id); err != nil {
		a.fail(w, r, err)
		return
	}
	a.logWrite(r, "alert rule deleted", "rule", id)
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) handlePreview(w http.ResponseWriter, r *http.Request) {
	rule, err := decodeRuleRequest(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.rules.Preview(rule))
}
