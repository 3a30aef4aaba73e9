package web

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/store"
)

// exportTimeFormat is RFC 3339 in UTC with millisecond precision.
const exportTimeFormat = "2006-01-02T15:04:05.000Z07:00"

// handleExport answers GET /api/export: stored points of one machine in long
// format, streamed as CSV or a JSON array. A machine unknown to the live
// state (never seen, or forgotten) is exported when it has stored points in
// the range, else answered 404.
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id := q.Get("machine")
	if id == "" {
		writeError(w, http.StatusBadRequest, "missing parameter machine")
		return
	}
	format := q.Get("format")
	if format == "" {
		format = "csv"
	}
	if format != "csv" && format != "json" {
		writeError(w, http.StatusBadRequest, "invalid parameter format: use csv or json")
		return
	}
	from, to, err := s.timeRange(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// A forgotten machine is no longer known, but its stored history is
	// still exported; only a machine with neither is unknown.
	known := s.opts.Live.Known(id)

	var ex exporter
	if format == "csv" {
		ex = &csvExporter{}
	} else {
		ex = &jsonExporter{}
	}
	out := &lazyBody{w: w, ex: ex, machine: id, filename: exportFilename(id, from, format)}
	// An empty metric exports every metric of the machine.
	err = s.opts.History.Export(r.Context(), store.Query{Metric: q.Get("metric"), Machine: id, MachineLabel: s.machineLabel(id), From: from, To: to},
		func(name string, ls metric.Labels, t int64, v float64) error {
			return out.row(name, ls, t, v)
		})
	if err != nil {
		if !out.started {
			s.historyError(w, r, err)
			return
		}
		// The status is sent: cut the stream short so the client sees a
		// truncated (invalid) file rather than a complete-looking one.
		s.log.Error("export failed mid-stream", "machine", id, "err", err)
		panic(http.ErrAbortHandler)
	}
	if !out.started && !known {
		writeError(w, http.StatusNotFound, "unknown machine")
		return
	}
	if err := out.finish(); err != nil {
		s.log.Debug("export write", "machine", id, "err", err)
	}
}

// lazyBody starts the response at the first row (or at the end), so an
// Export that fails before any row still gets a JSON error status.
type lazyBody struct {
	w        http.ResponseWriter
	ex       exporter
	machine  string
	filename string
	buf      *bufio.Writer
	started  bool
}

func (lb *lazyBody) start() {
	lb.started = true
	h := lb.w.Header()
	h.Set("Content-Type", lb.ex.contentType())
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": lb.filename}))
	lb.w.WriteHeader(http.StatusOK)
	lb.buf = bufio.NewWriterSize(lb.w, 32<<10)
	lb.ex.begin(lb.buf)
}

func (lb *lazyBody) row(name string, ls metric.Labels, t int64, v float64) error {
	if !lb.started {
		lb.start()
	}
	return lb.ex.row(lb.machine, name, ls, t, v)
}

func (lb *lazyBody) finish() error {
	if !lb.started {
		lb.start()
	}
	if err := lb.ex.end(); err != nil {
		return err
	}
	return lb.buf.Flush()
}

// exporter writes one export format.
type exporter interface {
	contentType() string
	begin(w *bufio.Writer)
	row(machine, name string, ls metric.Labels, t int64, v float64) error
	end() error
}

// csvExporter writes `timestamp,machine,metric,labels,value` rows.
type csvExporter struct {
	cw     *csv.Writer
	labels strings.Builder
	rec    [5]string
}

func (*csvExporter) contentType() string { return "text/csv; charset=utf-8" }

func (e *csvExporter) begin(w *bufio.Writer) {
	e.cw = csv.NewWriter(w)
	_ = e.cw.Write([]string{"timestamp", "machine", "metric", "labels", "value"})
}

func (e *csvExporter) row(machine, name string, ls metric.Labels, t int64, v float64) error {
	e.rec[0] = time.UnixMilli(t).UTC().Format(exportTimeFormat)
	e.rec[1] = neutralizeFormula(machine)
	e.rec[2] = name
	e.rec[3] = csvLabels(&e.labels, ls)
	e.rec[4] = strconv.FormatFloat(v, 'g', -1, 64)
	if err := e.cw.Write(e.rec[:]); err != nil {
		return err
	}
	return nil
}

func (e *csvExporter) end() error {
	e.cw.Flush()
	return e.cw.Error()
}

// csvLabels writes the labels as k=v;k2=v2 (sorted, machine excluded).
// Label names cannot contain ';', '=' or '\'; in values, '\' and ';' are
// escaped with a backslash so the field splits back unambiguously.
func csvLabels(sb *strings.Builder, ls metric.Labels) string {
	sb.Reset()
	for _, l := range ls {
		if l.Name == metric.MachineLabel {
			continue
		}
		if sb.Len() > 0 {
			sb.WriteByte(';')
		}
		sb.WriteString(l.Name)
		sb.WriteByte('=')
		for i := 0; i < len(l.Value); i++ {
			if c := l.Value[i]; c == '\\' || c == ';' {
				sb.WriteByte('\\')
			}
			sb.WriteByte(l.Value[i])
		}
	}
	return neutralizeFormula(sb.String())
}

// neutralizeFormula prefixes a ' to text a spreadsheet would run as a
// formula (CSV injection); machine ids and label values are untrusted.
func neutralizeFormula(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// jsonExporter writes a JSON array of
// {"timestamp","machine","metric","labels":{},"value"}.
type jsonExporter struct {
	w     *bufio.Writer
	enc   *json.Encoder
	first bool
}

type jsonRow struct {
	Timestamp string            `json:"timestamp"`
	Machine   string            `json:"machine"`
	Metric    string            `json:"metric"`
	Labels    map[string]string `json:"labels"`
	Value     jsonFloat         `json:"value"`
}

func (*jsonExporter) contentType() string { return "application/json" }

func (e *jsonExporter) begin(w *bufio.Writer) {
	e.w, e.enc, e.first = w, json.NewEncoder(w), true
	_ = w.WriteByte('[')
}

func (e *jsonExporter) row(machine, name string, ls metric.Labels, t int64, v float64) error {
	if !e.first {
		_ = e.w.WriteByte(',')
	}
	e.first = false
	lm := make(map[string]string, len(ls))
	for _, l := range ls {
		if l.Name != metric.MachineLabel {
			lm[l.Name] = l.Value
		}
	}
	return e.enc.Encode(jsonRow{
		Timestamp: time.UnixMilli(t).UTC().Format(exportTimeFormat),
		Machine:   machine, Metric: name, Labels: lm, Value: jsonFloat(v),
	})
}

func (e *jsonExporter) end() error {
	_, err := e.w.WriteString("]\n")
	return err
}

// jsonFloat is a float64 that encodes NaN and ±Inf as null.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) { return appendFloat(nil, float64(f)), nil }

// appendFloat appends v as a JSON number, or null when JSON cannot carry it.
func appendFloat(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// exportFilename is sysmonstm-MACHINE-FROM.EXT with the machine id reduced
// to safe characters.
func exportFilename(id string, from time.Time, ext string) string {
	var sb strings.Builder
	for _, r := range id {
		if r < 0x80 && (r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			sb.WriteRune(r)
		} else {
			sb.WriteByte('_')
		}
		if sb.Len() >= 64 {
			break
		}
	}
	name := strings.Trim(sb.String(), ".")
	if name == "" {
		name = "machine"
	}
	return "sysmonstm-" + name + "-" + from.UTC().Format("20060102T150405Z") + "." + ext
}
