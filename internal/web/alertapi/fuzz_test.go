package alertapi

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/sysmonstm/sysmonstm/internal/alert"
)

// FuzzAlertQuery feeds arbitrary GET /api/alerts query strings to the
// parser: it never panics, every refusal is a *alert.FieldError (a 400,
// never a 500), and what it accepts names only known states and severities
// and a limit within bounds.
func FuzzAlertQuery(f *testing.F) {
	f.Add("state=firing,pending&machine=web-1&rule=cpu&severity=critical&limit=10")
	f.Add("state=all")
	f.Add("state=open")
	f.Add("state=,firing,&limit=0")
	f.Add("severity=page&limit=99999999999999999999")
	f.Add("limit=%zz")
	f.Fuzz(func(t *testing.T, raw string) {
		r := &http.Request{URL: &url.URL{Path: "/api/alerts", RawQuery: raw}}
		q, err := parseAlertQuery(r)
		if err != nil {
			var fe *alert.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("%q: error %v is not a field error", raw, err)
			}
			return
		}
		for _, s := range q.States {
			if !slices.Contains([]string{alert.StatePending, alert.StateFiring, alert.StateResolved}, s) {
				t.Fatalf("%q: accepted state %q", raw, s)
			}
		}
		if q.Severity != "" && q.Severity != alert.SeverityWarning && q.Severity != alert.SeverityCritical {
			t.Fatalf("%q: accepted severity %q", raw, q.Severity)
		}
		if q.Limit < 0 || q.Limit > maxAlertLimit {
			t.Fatalf("%q: accepted limit %d", raw, q.Limit)
		}
	})
}
