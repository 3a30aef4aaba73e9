package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// grafanaDashboard is the shipped Grafana dashboard.
const grafanaDashboard = "../docs/grafana/sysmonstm-overview.json"

// grafanaPanel is the part of a dashboard panel the test reads; rows nest
// their panels when collapsed.
type grafanaPanel struct {
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr       string `json:"expr"`
		RefID      string `json:"refId"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaVar struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
}

type grafanaFile struct {
	Templating struct {
		List []grafanaVar `json:"list"`
	} `json:"templating"`
	Panels []grafanaPanel `json:"panels"`
}

// grafanaExpr is one panel query.
type grafanaExpr struct{ panel, ref, expr string }

// loadGrafanaDashboard reads the dashboard and checks its shape: a
// Prometheus data source variable that every panel and query uses, a
// machine variable, and at least one query per non-row panel.
func loadGrafanaDashboard(t *testing.T) (grafanaFile, []grafanaExpr) {
	t.Helper()
	b, err := os.ReadFile(grafanaDashboard)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaFile
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", grafanaDashboard, err)
	}
	vars := map[string]grafanaVar{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if v := vars["datasource"]; v.Type != "datasource" || string(v.Query) != `"prometheus"` {
		t.Errorf("variable datasource = %+v, want a prometheus data source variable", v)
	}
	if v := vars["machine"]; v.Type != "query" || v.Definition != "label_values(cpu_usage_percent, machine)" {
		t.Errorf("variable machine = %+v, want label_values(cpu_usage_percent, machine)", v)
	}
	var exprs []grafanaExpr
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: datasource is not ${datasource}", p.Title)
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
					t.Errorf("panel %q query %s: datasource is not ${datasource}", p.Title, tg.RefID)
				}
				exprs = append(exprs, grafanaExpr{p.Title, tg.RefID, tg.Expr})
			}
		}
	}
	walk(d.Panels)
	if len(exprs) < 10 {
		t.Fatalf("%d panel queries, want the core metrics' panels", len(exprs))
	}
	return d, exprs
}

// grafanaVarRef matches a Grafana variable reference: $name, ${name},
// ${name:format}, [[name]].
var grafanaVarRef = regexp.MustCompile(`\$\{?([a-zA-Z_][a-zA-Z0-9_]*)(:[a-z]+)?\}?|\[\[[a-zA-Z_]+\]\]`)

// substitute replaces the dashboard variables as Grafana's Prometheus data
// source does for one selected machine: the panels use machine=~, so the
// value is regex-escaped, and the backslashes doubled inside the PromQL
// string. Grafana's built-in intervals become fixed ones.
func substitute(expr, machine string) (string, error) {
	var bad error
	out := grafanaVarRef.ReplaceAllStringFunc(expr, func(ref string) string {
		name := strings.Trim(ref, "${}[]")
		name, _, _ = strings.Cut(name, ":")
		switch name {
		case "machine":
			return strings.ReplaceAll(regexp.QuoteMeta(machine), `\`, `\\`)
		case "__rate_interval", "__range":
			return "1m"
		case "__interval":
			return "15s"
		}
		bad = fmt.Errorf("unknown variable %s", ref)
		return ref
	})
	return out, bad
}

// promGet runs a Prometheus API GET with a bearer token and decodes the
// envelope.
func promGet(t *testing.T, hub *hubProc, token, path string, params url.Values) (int, promEnvelope) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+hub.http+path+"?"+params.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	var env promEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("GET %s: decode %q: %v", path, truncate(string(body)), err)
	}
	return resp.StatusCode, env
}

// promEnvelope is the Prometheus API's answer.
type promEnvelope struct {
	Status string          `json:"status"`
	Error  string          `json:"error"`
	Data   json.RawMessage `json:"data"`
}

// results is the number of series of a vector or matrix answer.
func (e promEnvelope) results() (int, error) {
	var d struct {
		Result []json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return 0, err
	}
	return len(d.Result), nil
}

// waitPromData waits until query answers at least one series.
func waitPromData(t *testing.T, hub *hubProc, token, query string) {
	t.Helper()
	testutil.WaitFor(t, 30*time.Second, query, func() error {
		code, env := promGet(t, hub, token, "/api/v1/query", url.Values{"query": {query}})
		if code != http.StatusOK || env.Status != "success" {
			return fmt.Errorf("status %d: %s", code, env.Error)
		}
		if n, err := env.results(); err != nil || n == 0 {
			return fmt.Errorf("%d series (%v)", n, err)
		}
		return nil
	})
}

// TestGrafanaDashboard runs every query of docs/grafana/sysmonstm-overview.json
// against a hub with a real agent (logged in as Grafana would be, with a
// bearer token): each must answer data, instant and over a range, so the
// dashboard cannot rot when a metric or label is renamed. The agent's host
// has no temperature sensors, so those series are ingested as an agent with
// sensors would send them.
func TestGrafanaDashboard(t *testing.T) {
	t.Parallel()
	_, exprs := loadGrafanaDashboard(t)
	catalogue, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	const password = "grafana-Pa55word"
	setEnv(t, "SYSMONSTM_ADMIN_PASSWORD", password)
	hub := startHub(t, t.TempDir(), "", "", "--require-login")
	const id = "graf.1" // a regex metacharacter: the substitution must escape it
	startAgent(t, hub, id, "--processes-interval", "1s")
	keepIngesting(t, hub, id, 500*time.Millisecond, func() []ingestSample {
		return []ingestSample{
			{"hwmon_temperature_celsius", map[string]string{"chip": "coretemp", "sensor": "Package id 0"}, 55},
			{"thermal_zone_temperature_celsius", map[string]string{"zone": "0", "type": "x86_pkg_temp"}, 54},
		}
	})
	token := alertsLogin(t, hub, "admin", password)

	// The machine variable's query, as Grafana sends label_values().
	waitPromData(t, hub, token, `processes_state{machine="graf.1"}`)
	code, env := promGet(t, hub, token, "/api/v1/label/machine/values", url.Values{"match[]": {"cpu_usage_percent"}})
	var machines []string
	if code != http.StatusOK || json.Unmarshal(env.Data, &machines) != nil || !contains(machines, id) {
		t.Fatalf("label_values(cpu_usage_percent, machine): status %d, %s, want %q", code, env.Data, id)
	}

	metricName := regexp.MustCompile(`\b([a-z][a-z0-9_]*)\{`)
	for _, e := range exprs {
		q, err := substitute(e.expr, id)
		if err != nil {
			t.Errorf("panel %q %s: %v", e.panel, e.ref, err)
			continue
		}
		for _, m := range metricName.FindAllStringSubmatch(q, -1) {
			if !strings.Contains(string(catalogue), "`"+m[1]+"`") {
				t.Errorf("panel %q %s: metric %s is not in docs/metrics.md", e.panel, e.ref, m[1])
			}
		}
		testutil.WaitFor(t, 20*time.Second, e.panel+" "+e.ref, func() error {
			now := time.Now()
			for _, call := range []struct {
				path   string
				params url.Values
			}{
				{"/api/v1/query", url.Values{"query": {q}}},
				{"/api/v1/query_range", url.Values{"query": {q}, "start": {fmt.Sprint(now.Add(-2 * time.Minute).Unix())}, "end": {fmt.Sprint(now.Unix())}, "step": {"15"}}},
			} {
				code, env := promGet(t, hub, token, call.path, call.params)
				if code != http.StatusOK || env.Status != "success" {
					return fmt.Errorf("%s %s: status %d: %s", call.path, q, code, env.Error)
				}
				if n, err := env.results(); err != nil || n == 0 {
					return fmt.Errorf("%s %s: no data (%d series, %v)", call.path, q, n, err)
				}
			}
			return nil
		})
	}
}

// TestGrafanaSubstitute: the variables the dashboard uses are replaced, a
// machine id's regex metacharacters escaped, unknown ones reported.
func TestGrafanaSubstitute(t *testing.T) {
	f := func(in, want string, bad bool) {
		t.Helper()
		got, err := substitute(in, "a.b+c")
		if got != want || (err != nil) != bad {
			t.Errorf("substitute(%q) = %q, %v; want %q, error %v", in, got, err, want, bad)
		}
	}
	f(`x{machine=~"$machine"}`, `x{machine=~"a\\.b\\+c"}`, false)
	f(`x{machine=~"${machine}"}`, `x{machine=~"a\\.b\\+c"}`, false)
	f(`x{machine=~"${machine:regex}"}`, `x{machine=~"a\\.b\\+c"}`, false)
	f(`rate(x[$__rate_interval])`, `rate(x[1m])`, false)
	f(`x{a="$nope"}`, `x{a="$nope"}`, true)
}
