package web

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"mime"
	"strings"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
)

func exportRows() []exportRow {
	t1 := now.Add(-time.Minute).UnixMilli() + 7 // ms precision survives
	return []exportRow{
		{"cpu_usage_percent", metric.Labels{{Name: "cpu", Value: "total"}, {Name: "machine", Value: "web-1"}}, t1, 12.5},
		{"filesystem_used_bytes", metric.Labels{
			{Name: "device", Value: hostile},
			{Name: "machine", Value: "web-1"},
			{Name: "mountpoint", Value: `/mnt/a;b\c=d`},
		}, t1 + 1000, 1e12},
		{"load1", metric.Labels{{Name: "machine", Value: "web-1"}}, t1, -0.5},
	}
}

func TestExportCSV(t *testing.T) {
	e := newEnv(t, nil)
	e.hist.rows = exportRows()
	res, raw := e.get(t, "/api/export?machine=web-1&from=-1h&to=now&format=csv", nil)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("%d %s: %s", res.StatusCode, res.Header.Get("Content-Type"), raw)
	}
	_, params, err := mime.ParseMediaType(res.Header.Get("Content-Disposition"))
	if err != nil || params["filename"] != "sysmonstm-web-1-20261122T110000Z.csv" {
		t.Fatalf("Content-Disposition %q: %v", res.Header.Get("Content-Disposition"), err)
	}
	q := e.hist.lastQuery(t)
	if q.Metric != "" || q.Machine != "web-1" || !q.From.Equal(now.Add(-time.Hour)) || !q.To.Equal(now) {
		t.Fatalf("query = %+v", q)
	}
	recs, err := csv.NewReader(strings.NewReader(string(raw))).ReadAll()
	if err != nil {
		t.Fatalf("CSV does not parse back: %v\n%s", err, raw)
	}
	want := [][]string{
		{"timestamp", "machine", "metric", "labels", "value"},
		{"2026-11-22T11:59:00.007Z", "web-1", "cpu_usage_percent", "cpu=total", "12.5"},
		{"2026-11-22T11:59:01.007Z", "web-1", "filesystem_used_bytes", "device=" + strings.ReplaceAll(hostile, ";", `\;`) + `;mountpoint=/mnt/a\;b\\c=d`, "1e+12"},
		{"2026-11-22T11:59:00.007Z", "web-1", "load1", "", "-0.5"},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d:\n%s", len(recs), len(want), raw)
	}
	for i := range want {
		for j := range want[i] {
			if recs[i][j] != want[i][j] {
				t.Errorf("record %d field %d = %q, want %q", i, j, recs[i][j], want[i][j])
			}
		}
	}
	if _, err := time.Parse(time.RFC3339, recs[1][0]); err != nil {
		t.Error(err)
	}

	// One metric only.
	_, raw = e.get(t, "/api/export?machine=web-1&metric=load1", nil)
	if e.hist.lastQuery(t).Metric != "load1" || strings.Count(string(raw), "\n") != 2 {
		t.Fatalf("metric filter: %s", raw)
	}
}

func TestExportCSVFormulaInjection(t *testing.T) {
	e := newEnv(t, nil)
	e.live.Connect(live.MachineInfo{ID: `=HYPERLINK("x")`})
	e.hist.rows = []exportRow{{"load1", nil, 0, 1}}
	res, raw := e.get(t, "/api/export?machine=%3DHYPERLINK(%22x%22)", nil)
	if res.StatusCode != 200 {
		t.Fatalf("%d %s", res.StatusCode, raw)
	}
	recs, err := csv.NewReader(strings.NewReader(string(raw))).ReadAll()
	if err != nil || recs[1][1] != `'=HYPERLINK("x")` {
		t.Fatalf("machine field %q, %v", recs[1][1], err)
	}
	_, params, _ := mime.ParseMediaType(res.Header.Get("Content-Disposition"))
	if fn := params["filename"]; strings.ContainsAny(fn, `"/\=()`) {
		t.Fatalf("filename not sanitized: %q", fn)
	}
}

func TestExportJSON(t *testing.T) {
	e := newEnv(t, nil)
	e.hist.rows = exportRows()
	res, raw := e.get(t, "/api/export?machine=web-1&format=json", nil)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s", res.StatusCode, raw)
	}
	if strings.Contains(string(raw), "<script>") {
		t.Fatalf("markup not escaped: %s", raw)
	}
	var rows []struct {
		Timestamp, Machine, Metric string
		Labels                     map[string]string
		Value                      float64
	}
	if err := json.Unmarshal(raw, &rows); err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	if len(rows) != 3 || rows[1].Labels["device"] != hostile || rows[1].Labels["mountpoint"] != `/mnt/a;b\c=d` ||
		rows[1].Value != 1e12 || rows[0].Timestamp != "2026-11-22T11:59:00.007Z" || rows[0].Machine != "web-1" {
		t.Fatalf("rows = %+v", rows)
	}
	if _, ok := rows[0].Labels["machine"]; ok {
		t.Fatal("machine label repeated in labels")
	}
	// No rows: an empty array.
	e.hist.rows = nil
	if _, raw = e.get(t, "/api/export?machine=web-1&format=json", nil); strings.TrimSpace(string(raw)) != "[]" {
		t.Fatalf("empty export = %q", raw)
	}
}

func TestExportErrors(t *testing.T) {
	e := newEnv(t, nil)
	e.wantError(t, "/api/export", 400, "machine")
	e.wantError(t, "/api/export?machine=nope", 404, "unknown machine")
	e.wantError(t, "/api/export?machine=web-1&format=xml", 400, "format")
	e.wantError(t, "/api/export?machine=web-1&from=bad", 400, "from")
	e.wantError(t, "/api/export?machine=web-1&from=now&to=-1h", 400, "after")
	e.hist.exportErr = errors.New("disk on fire")
	e.wantError(t, "/api/export?machine=web-1", 500, "query failed")

	// An error after rows went out truncates the stream (no complete file).
	e.hist.rows = exportRows()
	res, err := e.ts.Client().Get(e.ts.URL + "/api/export?machine=web-1&format=json")
	if err == nil {
		var v any
		err = json.NewDecoder(res.Body).Decode(&v)
		res.Body.Close()
	}
	if err == nil {
		t.Fatal("failed export looked complete")
	}
}
