package collect

import (
	"slices"
	"testing"
)

// TestRegistryRows: every row builds the collector it names, names are
// unique, and the core rows are SPEC §3's set, always available.
func TestRegistryRows(t *testing.T) {
	opts := Options{ProcPath: "testdata/proc", SysPath: "testdata/sys", RootFS: t.TempDir(), TextfileDir: t.TempDir()}.withDefaults()
	seen := map[string]bool{}
	for _, d := range Registry() {
		if seen[d.Name] {
			t.Errorf("collector %s registered twice", d.Name)
		}
		seen[d.Name] = true
		if d.New == nil {
			t.Fatalf("collector %s has no constructor", d.Name)
		}
		if got := d.New(opts).Name(); got != d.Name {
			t.Errorf("row %s builds collector %s", d.Name, got)
		}
		if d.Core && d.Available != nil {
			t.Errorf("core collector %s has an availability check", d.Name)
		}
	}
	spec := []string{"cpu", "load", "memory", "filesystem", "disk", "network", "processes", "uptime"}
	if got := CoreCollectors(); !slices.Equal(got, spec) {
		t.Errorf("core collectors %v, SPEC §3 names %v", got, spec)
	}
	if err := CheckCollectorNames(append(CoreCollectors(), ExtraCollectors()...)); err != nil {
		t.Errorf("a registered name is refused: %v", err)
	}
}
