package store

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

const (
	crashDirEnv     = "SYSMONSTM_STORE_CRASH_DIR"
	crashSeries     = 100
	crashPerCommit  = 10 // samples per series per commit
	crashMinCommits = 30
)

// TestCrashChild is the process TestCrashLosesNoCommittedSample kills; it
// does nothing unless started by that test.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("only runs as TestCrashLosesNoCommittedSample's child")
	}
	s, err := Open(Options{Dir: dir, Engine: os.Getenv("SYSMONSTM_TEST_ENGINE")})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	refs := make([]SeriesRef, crashSeries)
	for c := 0; ; c++ {
		app := s.Appender(context.Background())
		for i := range crashSeries {
			for j := range crashPerCommit {
				ts := ms(base) + int64(c*crashPerCommit+j)*1000
				if refs[i], err = app.Append(refs[i], series("load1", "m1", "i", strconv.Itoa(i)), ts, float64(c)); err != nil {
					fmt.Println("append:", err)
					os.Exit(2)
				}
			}
		}
		if err := app.Commit(); err != nil {
			fmt.Println("commit:", err)
			os.Exit(2)
		}
		// Acknowledge, like ingest acknowledging a batch to its agent.
		fmt.Printf("committed %d\n", c)
	}
}

// TestCrashLosesNoCommittedSample SIGKILLs a process that is appending and
// checks that every sample it saw committed is there after reopening.
func TestCrashLosesNoCommittedSample(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := -1
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if n, ok := strings.CutPrefix(line, "committed "); ok {
			acked, _ = strconv.Atoi(n)
			if acked >= crashMinCommits {
				break
			}
		} else if strings.Contains(line, ":") && !strings.HasPrefix(line, "=== RUN") {
			t.Fatalf("child: %s", line)
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if acked < crashMinCommits {
		t.Fatalf("child acknowledged only %d commits", acked)
	}

	s, _ := openTest(t, dir, base, nil)
	q, err := s.Raw().Querier(0, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	set := q.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "load1"))
	n := 0
	var it chunkenc.Iterator
	for set.Next() {
		n++
		it = set.At().Iterator(it)
		want := 0
		for it.Next() != chunkenc.ValNone {
			ts, v := it.At()
			if ts != ms(base)+int64(want)*1000 || v != float64(want/crashPerCommit) {
				t.Fatalf("%s: sample %d is (%d, %v)", set.At().Labels(), want, ts, v)
			}
			want++
		}
		if want < (acked+1)*crashPerCommit {
			t.Fatalf("%s: %d samples after the crash, %d were acknowledged", set.At().Labels(), want, (acked+1)*crashPerCommit)
		}
	}
	if n != crashSeries {
		t.Fatalf("%d series after the crash, want %d", n, crashSeries)
	}
	t.Logf("%d commits acknowledged, all present after SIGKILL", acked+1)
}

func TestRetentionPlumbsThrough(t *testing.T) {
	now := base.Add(10 * time.Hour)
	s, _ := openTest(t, "", now, func(o *Options) {
		o.RetentionRaw = 2 * time.Hour
		o.Retention1m = 5 * time.Hour
		o.Retention1h = 100 * time.Hour
	})
	// Tier choice follows the retentions.
	f := func(rng, step time.Duration, want string) {
		t.Helper()
		if got := mustQuery(t, s, Query{Metric: "x", From: now.Add(-rng), To: now, Step: step}).Tier; got != want {
			t.Fatalf("range %s step %s: tier %s, want %s", rng, step, got, want)
		}
	}
	f(90*time.Minute, time.Second, TierRaw)
	f(3*time.Hour, time.Second, Tier1m)
	f(6*time.Hour, time.Minute, Tier1h)

	// The raw TSDB drops blocks past its retention.
	appendRange(t, s, series("load1", "m1"), base, 10*360, 10*time.Second, func(i int) float64 { return float64(i) })
	if err := s.Raw().Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, vm := s.raw.(*vmRaw); vm {
		if start, _ := s.raw.StartTime(); start < ms(base.Add(8*time.Hour-time.Minute)) {
			t.Fatalf("raw tier starts at %s, retention is 2h", time.UnixMilli(start).UTC())
		}
		return
	}
	blocks := rawTSDB(t, s).Blocks()
	if len(blocks) == 0 {
		t.Fatal("no blocks after compaction")
	}
	if first := blocks[0].Meta().MinTime; first < ms(now.Add(-6*time.Hour)) {
		t.Fatalf("oldest raw block starts at %s, retention is 2h", time.UnixMilli(first).UTC())
	}
}

func TestMetricsRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, clk := openTest(t, "", base, func(o *Options) { o.Registerer = reg })
	appendRange(t, s, series("load1", "m1"), base, 181, time.Second, func(int) float64 { return 1 })
	clk.Set(base.Add(time.Hour + DefaultOutOfOrderWindow + 2*time.Minute)) // its hour is final
	mustRollup(t, s)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	tiers := map[string]bool{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "tier" && mf.GetName() == "prometheus_tsdb_head_series" {
					tiers[lp.GetValue()] = true
				}
			}
			if mf.GetName() == "sysmonstm_storage_raw_series" && m.GetGauge().GetValue() == 1 {
				tiers["raw"] = true // the raw tier on engine vm
			}
			if c := m.GetCounter(); c != nil {
				got[mf.GetName()] += c.GetValue()
			}
		}
	}
	if got["sysmonstm_store_rollup_runs_total"] != 1 || got["sysmonstm_store_rollup_samples_total"] != 4*4 { // minute 3 holds the 181st sample
		t.Fatalf("rollup metrics %v", got)
	}
	if len(tiers) != 3 {
		t.Fatalf("tsdb metrics for tiers %v, want raw, 1m, 1h", tiers)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(Options{}); err == nil {
		t.Fatal("open without a directory succeeded")
	}
	file := t.TempDir() + "/file"
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Dir: file}); err == nil {
		t.Fatal("open on a file succeeded")
	}
}

func TestRawHeadStripes(t *testing.T) {
	for _, c := range []struct {
		series uint64
		want   int
	}{
		{0, tsdb.DefaultStripeSize},
		{8 * tsdb.DefaultStripeSize, tsdb.DefaultStripeSize},
		{8*tsdb.DefaultStripeSize + 1, 2 * tsdb.DefaultStripeSize},
		{1_000_000, 1 << 17},
		{1_300_000, 1 << 18},
		{1 << 40, maxRawHeadStripes},
	} {
		if got := rawHeadStripes(c.series); got != c.want {
			t.Errorf("rawHeadStripes(%d) = %d, want %d", c.series, got, c.want)
		}
	}
}

// The raw head opens with stripes for the series it held when the state was
// last saved, and the saved state follows the head.
func TestRawHeadSizedFromTheSavedSeries(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, stateFile), []byte(`{"version":1,"machines":{},"raw_head_series":1000000}`), 0o640); err != nil {
		t.Fatal(err)
	}
	open := func() (*Store, int) {
		var stripes int
		s, err := Open(Options{Dir: dir, Now: func() time.Time { return base }, Engine: EngineTSDB, tune: func(tier string, o *tsdb.Options) {
			if tier == TierRaw {
				stripes = o.StripeSize
			}
		}})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		return s, stripes
	}
	s, stripes := open()
	if stripes != 1<<17 {
		t.Fatalf("raw head opened with %d stripes after 1,000,000 series, want %d", stripes, 1<<17)
	}
	for _, m := range []string{"a", "b", "c"} {
		appendRange(t, s, series("cpu_usage_percent", m), base, 3, time.Second, func(i int) float64 { return float64(i) })
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	var st stateJSON
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st.RawHeadSeries != 3 {
		t.Fatalf("saved state records %d raw head series, want 3:\n%s", st.RawHeadSeries, b)
	}
	s, stripes = open()
	defer s.Close()
	if stripes != tsdb.DefaultStripeSize {
		t.Fatalf("raw head reopened with %d stripes after 3 series, want the default %d", stripes, tsdb.DefaultStripeSize)
	}
}
