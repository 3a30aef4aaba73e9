package collect

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/e2e-output.txt from the collectors' output")

// goldenFile is the whole output of the default collector set on the
// fixture tree, as node_exporter's e2e-output.txt: a changed metric name or
// label shows up in review as a diff of this file.
const goldenFile = "testdata/e2e-output.txt"

// goldenHeader opens goldenFile.
const goldenHeader = `# The series of every default collector on the fixture tree (testdata/),
# sorted: name{labels} value. Values that depend on the clock or on the
# host running the test are left out (name{labels} only).
# Regenerate: go test ./internal/collect -run TestCollectorsGolden -update
`

// hostDependent reports whether the value of series name depends on the
// wall clock or the test host rather than on the fixture files alone.
func hostDependent(name string) bool {
	switch {
	case strings.HasSuffix(name, "_per_second"): // counter deltas over elapsed time
		return true
	case strings.HasPrefix(name, "filesystem_"): // statfs of the test's temporary directory
		return true
	}
	switch name {
	case "disk_io_time_percent", // busy milliseconds over elapsed time
		"container_cpu_usage_percent", "systemd_unit_cpu_usage_percent", // cgroup CPU time over elapsed time
		"textfile_mtime_seconds": // the fixture copy's modification time
		return true
	}
	return false
}

// TestCollectorsGolden runs NewDefault's collectors on a copy of the fixture
// tree for two ticks (rates need two readings) and compares every series
// with goldenFile. The collectors that exec a program (smartctl,
// nvidia-smi, systemctl) read their fixture output instead, whether or not
// the host has the program.
func TestCollectorsGolden(t *testing.T) {
	root := copyFixture(t)
	opts := Options{
		ProcPath:    filepath.Join(root, "proc"),
		SysPath:     filepath.Join(root, "sys"),
		RootFS:      root,
		TextfileDir: filepath.Join(root, "textfile"),
		Timeout:     10 * time.Second,
	}
	var cs []Collector
	var waits []func()
	smart := false
	for _, r := range NewDefault(opts).runners {
		switch c := r.c.(type) {
		case *Smart:
			smart = true
			goldenSmart(t, c)
			waits = append(waits, c.src.wait)
		case *GPU:
			c.NvidiaSMI = "/usr/bin/nvidia-smi"
			c.run = fixtureRun(t, map[string]string{
				"--query-gpu=" + nvidiaQuery + " --format=csv,noheader,nounits":               "nvidia-smi/query-gpu.csv",
				"--query-compute-apps=gpu_uuid,pid,used_memory --format=csv,noheader,nounits": "nvidia-smi/query-compute-apps.csv",
			})
			waits = append(waits, c.src.wait)
		case *Systemd:
			c.Systemctl = "/usr/bin/systemctl"
			c.run = fixtureRun(t, map[string]string{
				"show --no-pager --property=Id,LoadState,ActiveState,SubState,NRestarts *.service": "systemctl-show.txt",
			})
			waits = append(waits, c.state.wait)
		case *Containers:
			waits = append(waits, c.names.wait)
		}
		cs = append(cs, r.c)
	}
	if !smart { // NewDefault adds it only where smartctl is installed
		c := NewSmart(opts)
		goldenSmart(t, c)
		waits = append(waits, c.src.wait)
		cs = append(cs, c)
	}
	set := NewSet(opts, cs...)
	ctx := context.Background()

	set.Collect(ctx) // starts the background sources, reads the counters
	for _, wait := range waits {
		wait()
	}
	// CPU usage is a ratio of jiffies: give it a second reading that
	// differs (the values of TestCPUFixture).
	writeFile(t, filepath.Join(root, "proc", "stat"),
		"cpu  21578 0 9069 94836 795 0 205 953 0 0\n"+
			"cpu0 10267 0 3798 49076 58 0 32 503 0 0\n"+
			"cpu1 11310 0 5271 45759 736 0 173 449 0 0\n"+
			"intr 714950 0 0\nbtime 1795629822\nprocs_running 5\nprocs_blocked 1\n")
	samples := set.Collect(ctx)
	for _, st := range set.Stats() {
		if st.Err != nil || st.Skipped {
			t.Errorf("collector %s: err %v, skipped %v", st.Name, st.Err, st.Skipped)
		}
	}

	var b strings.Builder
	b.WriteString(goldenHeader)
	for _, line := range formatSamples(samples) {
		name := line[:strings.IndexByte(line, '{')]
		if hostDependent(name) {
			line = line[:strings.LastIndexByte(line, ' ')]
		}
		b.WriteString(line + "\n")
	}
	got := b.String()
	if *updateGolden {
		if err := os.WriteFile(goldenFile, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatalf("%v (create it with -update)", err)
	}
	if got != string(want) {
		t.Errorf("collector output differs from %s (if the change is intended, rerun with -update and review the diff):\n%s",
			goldenFile, lineDiff(string(want), got))
	}
}

// goldenSmart points c at the smartctl fixture output.
func goldenSmart(t *testing.T, c *Smart) {
	c.Smartctl = "/usr/sbin/smartctl"
	c.run = fixtureRun(t, map[string]string{
		"--scan-open --json": "smartctl/scan-open.json",
		"--json --all --nocheck=standby --device=sat /dev/sda":    "smartctl/sda.json",
		"--json --all --nocheck=standby --device=nvme /dev/nvme0": "smartctl/nvme0.json",
	})
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	count := func(s string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(s, "\n") {
			m[l]++
		}
		return m
	}
	w, g := count(want), count(got)
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if g[l] == 0 {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if w[l] == 0 {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

// TestCollectorMetricsDocumented checks every series name in goldenFile is
// in the metrics catalogue (docs/metrics.md), except the user metrics of the
// textfile fixtures.
func TestCollectorMetricsDocumented(t *testing.T) {
	golden, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := os.ReadFile(filepath.Join("..", "..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	user := map[string]bool{}
	proms, _ := filepath.Glob(filepath.Join("testdata", "textfile", "*.prom"))
	for _, p := range proms {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && line[0] != '#' {
				user[line[:strings.IndexAny(line+" ", "{ ")]] = true
			}
		}
	}
	checked := 0
	for _, line := range strings.Split(string(golden), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name := line[:strings.IndexByte(line, '{')]
		if user[name] {
			continue
		}
		checked++
		if !strings.Contains(string(docs), "`"+name+"`") {
			t.Errorf("%s is not in docs/metrics.md; document it in the catalogue", name)
		}
	}
	if checked == 0 {
		t.Fatal("no series checked")
	}
}
