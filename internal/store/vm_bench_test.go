package store

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// TestBytesPerSampleVictoriaMetrics writes the exact workload of
// TestBytesPerSample (on-tick timestamps, rounded values) into a running
// VictoriaMetrics through its JSON import API, merges it, and reports VM's
// bytes per sample — the alternative storage the architecture compares with.
//
//	victoria-metrics -storageDataPath /tmp/vm -httpListenAddr 127.0.0.1:18428 -retentionPeriod 100y &
//	SYSMONSTM_BENCH_VM_URL=http://127.0.0.1:18428 SYSMONSTM_BENCH_HOSTS=50 go test -run BytesPerSampleVictoria -v ./internal/store/
func TestBytesPerSampleVictoriaMetrics(t *testing.T) {
	url := os.Getenv("SYSMONSTM_BENCH_VM_URL")
	if url == "" {
		t.Skip("set SYSMONSTM_BENCH_VM_URL to a VictoriaMetrics started with -retentionPeriod 100y")
	}
	hosts := envInt("SYSMONSTM_BENCH_HOSTS", 50)
	hours := envInt("SYSMONSTM_BENCH_HOURS", 3)
	ticks := hours * 3600
	pr, pw := io.Pipe()
	samples := 0
	go func() {
		bw := bufio.NewWriterSize(pw, 1<<20)
		vals := make([]float64, 128)
		var line []byte
		for h := 0; h < hosts; h++ {
			w := newWorkload("host-"+strconv.Itoa(h), uint64(h), true)
			cols := make([][]float64, len(w.series))
			for i := range cols {
				cols[i] = make([]float64, ticks)
			}
			for tick := 0; tick < ticks; tick++ {
				w.next(vals)
				for i := range cols {
					cols[i][tick] = vals[i]
				}
			}
			for i, ls := range w.series {
				line = append(line[:0], `{"metric":{`...)
				first := true
				ls.Range(func(l labels.Label) {
					if !first {
						line = append(line, ',')
					}
					first = false
					line = strconv.AppendQuote(line, l.Name)
					line = append(line, ':')
					line = strconv.AppendQuote(line, l.Value)
				})
				line = append(line, `},"values":[`...)
				for k, v := range cols[i] {
					if k > 0 {
						line = append(line, ',')
					}
					line = strconv.AppendFloat(line, v, 'g', -1, 64)
				}
				line = append(line, `],"timestamps":[`...)
				for k := 0; k < ticks; k++ {
					if k > 0 {
						line = append(line, ',')
					}
					line = strconv.AppendInt(line, ms(base)+int64(k)*1000, 10)
				}
				line = append(line, "]}\n"...)
				if _, err := bw.Write(line); err != nil {
					pw.CloseWithError(err)
					return
				}
				samples += ticks
			}
		}
		pw.CloseWithError(bw.Flush())
	}()
	began := time.Now()
	resp, err := http.Post(url+"/api/v1/import", "application/json", pr)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("import: %s %s", resp.Status, body)
	}
	took := time.Since(began)
	for _, p := range []string{"/internal/force_flush", "/internal/force_merge?partition_prefix=" + base.Format("2006_01")} {
		r, err := http.Get(url + p)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
	}
	// Merging runs in the background: wait until the row count is final
	// and the part count settles.
	var data, index, rows float64
	var parts float64 = -1
	for i := 0; i < 120; i++ {
		time.Sleep(2 * time.Second)
		m := vmMetrics(t, url)
		data, index, rows = m[`vm_data_size_bytes{type="storage/small"}`]+m[`vm_data_size_bytes{type="storage/big"}`],
			m[`vm_data_size_bytes{type="indexdb/file"}`]+m[`vm_data_size_bytes{type="indexdb"}`],
			m[`vm_rows{type="storage/small"}`]+m[`vm_rows{type="storage/big"}`]
		p := m[`vm_parts{type="storage/small"}`] + m[`vm_parts{type="storage/big"}`]
		if int(rows) >= samples && p == parts && p <= 2 {
			break
		}
		parts = p
	}
	t.Logf("VictoriaMetrics: %d hosts × %d series × %dh = %d samples imported in %s (%.0f samples/s)",
		hosts, samples/hosts/ticks, hours, samples, took.Round(time.Millisecond), float64(samples)/took.Seconds())
	t.Logf("rows %.0f, parts %.0f: data %.0f B = %.3f B/sample; index %.0f B = %.3f B/sample; total %.3f B/sample",
		rows, parts, data, data/float64(samples), index, index/float64(samples), (data+index)/float64(samples))
}

var vmMetricLine = regexp.MustCompile(`^(vm_(?:data_size_bytes|rows|parts)\{type="[^"]+"\}) ([0-9.e+]+)$`)

func vmMetrics(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := vmMetricLine.FindStringSubmatch(sc.Text()); m != nil {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatal(fmt.Errorf("parse %q: %w", sc.Text(), err))
			}
			out[m[1]] = v
		}
	}
	return out
}
