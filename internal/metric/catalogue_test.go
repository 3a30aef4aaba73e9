package metric

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestCatalogueMatchesDocs: the catalogue in code lists exactly the metric
// families of docs/metrics.md's tables (the agent's internal
// sysmonstm_* series aside), with their type: "gauge (counter value)" is a
// counter.
func TestCatalogueMatchesDocs(t *testing.T) {
	b, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	name := regexp.MustCompile("`([a-z0-9_]+)`")
	for _, line := range strings.Split(string(b), "\n") {
		cols := strings.Split(strings.Trim(line, "| "), "|")
		if !strings.HasPrefix(line, "| `") || len(cols) < 3 || !strings.HasPrefix(strings.TrimSpace(cols[1]), "gauge") {
			continue
		}
		typ := "gauge"
		if strings.Contains(cols[1], "counter") {
			typ = "counter"
		}
		for _, m := range name.FindAllStringSubmatch(cols[0], -1) {
			if !strings.HasPrefix(m[1], "sysmonstm_") {
				docs[m[1]] = typ
			}
		}
	}
	if len(docs) < 50 {
		t.Fatalf("read only %d families from docs/metrics.md", len(docs))
	}
	for _, f := range Catalogue {
		typ, ok := docs[f.Name]
		switch {
		case !ok:
			t.Errorf("%s is in the catalogue, not in docs/metrics.md", f.Name)
		case typ != f.Type:
			t.Errorf("%s: type %s, docs/metrics.md says %s", f.Name, f.Type, typ)
		case f.Help == "" || !strings.HasSuffix(f.Help, "."):
			t.Errorf("%s: help %q is not a sentence", f.Name, f.Help)
		}
		delete(docs, f.Name)
	}
	for n := range docs {
		t.Errorf("%s is in docs/metrics.md, not in the catalogue (internal/metric/catalogue.go)", n)
	}
	if !slices.IsSortedFunc(Catalogue, func(a, b Family) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("catalogue not sorted")
	}
	for _, c := range []struct{ name, unit string }{{"memory_used_bytes", "bytes"}, {"pressure_some_seconds_total", "seconds"}, {"load1", ""}, {"disk_read_bytes_per_second", ""}, {"gpu_frequency_mhz", "mhz"}} {
		i := slices.IndexFunc(Catalogue, func(f Family) bool { return f.Name == c.name })
		if i < 0 || Catalogue[i].Unit != c.unit {
			t.Errorf("%s: unit of %+v, want %q", c.name, Catalogue[i], c.unit)
		}
	}
}
