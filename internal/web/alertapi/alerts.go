package alertapi

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/sysmonstm/sysmonstm/internal/alert"
)

// maxAlertLimit bounds ?limit= of GET /api/alerts.
const maxAlertLimit = 10000

// parseAlertQuery reads ?state=&machine=&rule=&severity=&limit=.
func parseAlertQuery(r *http.Request) (alert.AlertQuery, error) {
	v := r.URL.Query()
	var q alert.AlertQuery
	if s := v.Get("state"); s != "" {
		for _, st := range strings.Split(s, ",") {
			switch st = strings.TrimSpace(st); st {
			case alert.StatePending, alert.StateFiring, alert.StateResolved:
				if !slices.Contains(q.States, st) {
					q.States = append(q.States, st)
				}
			case "all":
				q.States = []string{alert.StateFiring, alert.StatePending, alert.StateResolved}
			default:
				return q, fieldErr("state", "%q: must be firing, pending, resolved or all (or a comma-separated list)", truncate(st, 40))
			}
		}
	}
	q.Machine = v.Get("machine")
	q.Rule = v.Get("rule")
	q.Severity = v.Get("severity")
	if q.Severity != "" && q.Severity != alert.SeverityWarning && q.Severity != alert.SeverityCritical {
		return q, fieldErr("severity", "%q: must be warning or critical", truncate(q.Severity, 40))
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxAlertLimit {
			return q, fieldErr("limit", "%q: must be a whole number from 1 to %d", truncate(s, 20), maxAlertLimit)
		}
		q.Limit = n
	}
	return q, nil
}

func (a *API) handleListAlerts(w http.ResponseWriter, r *http.Request) {
	q, err := parseAlertQuery(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	alerts, err := a.alerts.Alerts(r.Context(), q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, alerts)
}

func (a *API) handleGetAlert(w http.ResponseWriter, r *http.Request) {
	al, err := a.alerts.Alert(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, al)
}

func (a *API) handleAck(w http.ResponseWriter, r *http.Request) {
	b, err := readBody(w, r, true)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	comment, err := alert.DecodeAck(b)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	al, err := a.alerts.Acknowledge(r.Context(), r.PathValue("id"), true, principal(r), comment)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.logWrite(r, "alert acknowledged", "alert", al.ID, "rule", al.RuleName, "machine", al.Machine)
	writeJSON(w, http.StatusOK, al)
}

func (a *API) handleUnack(w http.ResponseWriter, r *http.Request) {
	al, err := a.alerts.Acknowledge(r.Context(), r.PathValue("id"), false, "", "")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.logWrite(r, "alert acknowledgement removed", "alert", al.ID)
	writeJSON(w, http.StatusOK, al)
}
