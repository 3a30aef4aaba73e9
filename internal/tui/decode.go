package tui

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"
)

// The hub streams about a hundred values per machine per second; with a
// thousand machines that is megabytes of JSON a second. Decoding it with
// encoding/json into maps would dominate the dashboard's CPU and memory, so
// the WebSocket messages are read by a small scanner that keeps byte slices
// into the message and allocates only for machines, filesystems, devices and
// interfaces it has not seen before. Rare, small parts (host info, alerts,
// processes) still go through encoding/json.

var errSyntax = errors.New("malformed JSON from hub")

// scanner reads JSON values from b.
type scanner struct {
	b   []byte
	i   int
	err error
}

func (s *scanner) fail() {
	if s.err == nil {
		s.err = errSyntax
	}
	s.i = len(s.b)
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *scanner) expect(c byte) bool {
	if s.peek() != c {
		s.fail()
		return false
	}
	s.i++
	return true
}

// next advances to the next member of an object or array that closes with
// close; n counts members so far. It returns false at the end.
func (s *scanner) next(close byte, n *int) bool {
	c := s.peek()
	if s.err != nil || c == 0 {
		s.fail()
		return false
	}
	if c == close {
		s.i++
		return false
	}
	if *n > 0 {
		if c != ',' {
			s.fail()
			return false
		}
		s.i++
	}
	*n++
	return true
}

// key reads an object key and the colon after it.
func (s *scanner) key() []byte {
	k := s.str()
	s.expect(':')
	return k
}

// str reads a string. Without escapes the result aliases the message;
// with escapes it is decoded into a new slice.
func (s *scanner) str() []byte {
	if !s.expect('"') {
		return nil
	}
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '"':
			s.i++
			return s.b[start : s.i-1]
		case '\\':
			return s.escaped(start - 1)
		}
		s.i++
	}
	s.fail()
	return nil
}

// escaped finishes a string with escapes that opened at quote.
func (s *scanner) escaped(quote int) []byte {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			s.i += 2
			continue
		case '"':
			s.i++
			var out string
			if err := json.Unmarshal(s.b[quote:s.i], &out); err != nil {
				s.fail()
				return nil
			}
			return []byte(out)
		}
		s.i++
	}
	s.fail()
	return nil
}

// num reads a number; null gives NaN.
func (s *scanner) num() float64 {
	c := s.peek()
	if c == 'n' {
		s.lit("null")
		return math.NaN()
	}
	start := s.i
	neg, intOnly, n := false, true, int64(0)
	if c == '-' {
		neg = true
		s.i++
	}
	digits := 0
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c >= '0' && c <= '9':
			if digits < 15 {
				n = n*10 + int64(c-'0')
			} else {
				intOnly = false
			}
			digits++
		case c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-':
			intOnly = false
		default:
			goto done
		}
		s.i++
	}
done:
	if digits == 0 {
		s.fail()
		return math.NaN()
	}
	if intOnly {
		if neg {
			n = -n
		}
		return float64(n)
	}
	v, err := strconv.ParseFloat(string(s.b[start:s.i]), 64)
	if err != nil {
		s.fail()
		return math.NaN()
	}
	return v
}

func (s *scanner) lit(want string) {
	if len(s.b)-s.i < len(want) || string(s.b[s.i:s.i+len(want)]) != want {
		s.fail()
		return
	}
	s.i += len(want)
}

// boolean reads true or false (null is false).
func (s *scanner) boolean() bool {
	switch s.peek() {
	case 't':
		s.lit("true")
		return true
	case 'f':
		s.lit("false")
	default:
		s.lit("null")
	}
	return false
}

// skip skips one value and returns its bytes.
func (s *scanner) skip() []byte {
	c := s.peek()
	start := s.i
	switch c {
	case '"':
		s.str()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return s.b[start:s.i]
				}
			case '"':
				s.str()
				continue
			}
			s.i++
		}
		s.fail()
	case 't':
		s.lit("true")
	case 'f':
		s.lit("false")
	case 'n':
		s.lit("null")
	default:
		s.num()
	}
	return s.b[start:s.i]
}

// labels reads a labels object into p.
func (s *scanner) labels(p *point) {
	if s.peek() == 'n' {
		s.lit("null")
		return
	}
	s.expect('{')
	for n := 0; s.next('}', &n); {
		k := s.key()
		if s.peek() != '"' {
			s.skip()
			continue
		}
		p.setLabel(k, s.str())
	}
}

// values reads a metrics array into m.
func (s *scanner) values(m *Machine) {
	if s.peek() == 'n' {
		s.lit("null")
		return
	}
	var p point
	s.expect('[')
	for n := 0; s.next(']', &n); {
		p.reset()
		s.expect('{')
		for k := 0; s.next('}', &k); {
			switch string(s.key()) {
			case "name":
				p.name = s.str()
			case "labels":
				s.labels(&p)
			case "value":
				p.value = s.num()
			default:
				s.skip()
			}
		}
		if s.err == nil {
			m.apply(&p)
		}
	}
}

// summary reads a summary object ({"cpu":…,"disk_max":…}, docs/api.md)
// into m: it replaces every headline value, and a value it leaves out is
// unknown.
func (s *scanner) summary(m *Machine) {
	nan := math.NaN()
	cpu, mem, disk, load, rx, tx, up := nan, nan, nan, nan, nan, nan, nan
	svcOK, svcTotal := nan, nan
	if s.peek() == 'n' {
		s.lit("null")
	} else {
		s.expect('{')
		for n := 0; s.next('}', &n); {
			switch string(s.key()) {
			case "cpu":
				cpu = s.num()
			case "mem":
				mem = s.num()
			case "disk_max":
				disk = s.num()
			case "load1":
				load = s.num()
			case "net_rx":
				rx = s.num()
			case "net_tx":
				tx = s.num()
			case "uptime":
				up = s.num()
			case "services_ok":
				svcOK = s.num()
			case "services_total":
				svcTotal = s.num()
			default:
				s.skip()
			}
		}
	}
	if s.err != nil {
		return
	}
	m.CPU, m.MemPct, m.Load1, m.Uptime = cpu, mem, load, up
	m.summarised = true
	m.sumDisk, m.sumRx, m.sumTx = disk, rx, tx
	m.sumSvcOK, m.sumSvcTotl = count(svcOK), count(svcTotal)
	if m.sumSvcTotl < 0 || m.sumSvcOK < 0 || m.sumSvcOK > m.sumSvcTotl {
		m.sumSvcOK, m.sumSvcTotl = -1, -1
	}
}

// count turns a JSON number into a count: -1 when it is unknown, negative,
// fractional or absurdly large.
func count(v float64) int {
	if !(v >= 0 && v <= 1e6) || v != math.Trunc(v) {
		return -1
	}
	return int(v)
}

// Message types of the hub's WebSocket (docs/api.md).
const (
	msgSnapshot  = "snapshot"
	msgMetrics   = "metrics"
	msgSummary   = "summary"
	msgMachine   = "machine"
	msgProcesses = "processes"
	msgAlert     = "alert"
	msgError     = "error"
)

// HandleMessage applies one WebSocket message from the hub to the fleet.
// A machine event with "forgotten": true removes the machine. Unknown
// message types are ignored (newer hubs).
func (f *Fleet) HandleMessage(b []byte) error {
	s := scanner{b: b}
	var typ, mode, machine, metrics, machines, summary, procs []byte
	var machineStr, forgotten bool
	s.expect('{')
	for n := 0; s.next('}', &n); {
		switch string(s.key()) {
		case "type":
			typ = s.str()
		case "mode":
			if s.peek() == '"' {
				mode = s.str()
			} else {
				s.skip()
			}
		case "machine":
			machineStr = s.peek() == '"'
			machine = s.skip()
		case "metrics":
			metrics = s.skip()
		case "machines":
			machines = s.skip()
		case "summary":
			summary = s.skip()
		case "processes":
			procs = s.skip()
		case "forgotten":
			forgotten = s.boolean()
		default:
			s.skip()
		}
	}
	if s.err != nil {
		return s.err
	}
	switch string(typ) {
	case msgMetrics:
		if !machineStr || metrics == nil {
			return errSyntax
		}
		id := (&scanner{b: machine}).str()
		f.mu.Lock()
		defer f.mu.Unlock()
		m := f.byID[string(id)]
		if m == nil {
			m = f.machine(string(id))
		}
		ms := scanner{b: metrics}
		ms.values(m)
		m.EndBatch()
		m.LastSeen = f.now()
		f.touch()
		return ms.err
	case msgSummary:
		if !machineStr || summary == nil {
			return errSyntax
		}
		id := (&scanner{b: machine}).str()
		f.mu.Lock()
		defer f.mu.Unlock()
		m := f.byID[string(id)]
		if m == nil {
			m = f.machine(string(id))
		}
		ss := scanner{b: summary}
		ss.summary(m)
		if ss.err != nil {
			return ss.err
		}
		m.pushHeadline()
		m.LastSeen = f.now()
		f.touch()
		return nil
	case msgProcesses:
		if !machineStr || procs == nil {
			return errSyntax
		}
		id := (&scanner{b: machine}).str()
		var ps []Process
		if err := json.Unmarshal(procs, &ps); err != nil {
			return err
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if m := f.byID[string(id)]; m != nil { // never creates a machine
			m.SetProcesses(ps)
			f.touch()
		}
		return nil
	case msgSnapshot:
		f.mu.Lock()
		defer f.mu.Unlock()
		f.reset()
		// A snapshot comes first on every connection: the source is live.
		f.summary = string(mode) == "summary"
		f.conn = ConnState{Connected: true}
		ms := scanner{b: machines}
		ms.expect('[')
		for n := 0; ms.next(']', &n); {
			ms.machine(f, true)
		}
		f.recountAlerts()
		f.touchUrgent() // the first frame with data: no waiting for the refresh
		return ms.err
	case msgMachine:
		if machineStr {
			return errSyntax
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		ms := scanner{b: machine}
		if forgotten { // the hub forgot it: it leaves the fleet
			id := ms.machineID()
			if ms.err != nil {
				return ms.err
			}
			f.remove(string(id))
			f.touch()
			return nil
		}
		ms.machine(f, false)
		f.recountAlerts()
		f.touch()
		return ms.err
	case msgAlert:
		var a struct {
			Alert
			Nested *Alert `json:"alert"`
		}
		if err := json.Unmarshal(b, &a); err != nil {
			return err
		}
		if a.Nested != nil {
			a.Alert = *a.Nested
		}
		if a.ID != "" {
			f.UpsertAlert(a.Alert)
		}
	}
	return nil
}

// HandleMachine applies a machine object from GET /api/machines/{id}
// (identity, latest values, processes) to the fleet.
func (f *Fleet) HandleMachine(b []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := scanner{b: b}
	s.machine(f, true)
	if s.err != nil {
		return s.err
	}
	f.recountAlerts()
	f.touchUrgent()
	return nil
}

// machine reads one machine object (GET /api/machines/{id} shape) into f.
// Caller holds f.mu.
func (s *scanner) machine(f *Fleet, withValues bool) {
	var (
		id, hostname, info, metrics, procs, summary []byte
		labels                                      map[string]string
		online, connected                           bool
		lastSeen                                    time.Time
	)
	s.expect('{')
	for n := 0; s.next('}', &n); {
		switch string(s.key()) {
		case "id":
			id = s.str()
		case "hostname":
			hostname = s.str()
		case "labels":
			if err := json.Unmarshal(s.skip(), &labels); err != nil {
				s.fail()
			}
		case "online":
			online = s.boolean()
		case "connected":
			connected = s.boolean()
		case "last_seen":
			if s.peek() == '"' {
				lastSeen, _ = time.Parse(time.RFC3339Nano, string(s.str()))
			} else {
				s.skip()
			}
		case "info":
			info = s.skip()
		case "metrics":
			metrics = s.skip()
		case "processes":
			procs = s.skip()
		case "summary":
			summary = s.skip()
		default:
			s.skip()
		}
	}
	if s.err != nil || len(id) == 0 {
		s.fail()
		return
	}
	m := f.machine(string(id))
	m.SetMeta(string(hostname), labels, online, connected, lastSeen)
	if info != nil {
		var in Info
		if json.Unmarshal(info, &in) == nil {
			m.Info = in.clean()
		}
	}
	if withValues && metrics != nil {
		ms := scanner{b: metrics}
		ms.values(m)
		if ms.err == nil {
			m.EndBatch()
		}
	}
	if withValues && summary != nil {
		ss := scanner{b: summary}
		ss.summary(m)
		if ss.err != nil {
			s.fail()
			return
		}
		m.pushHeadline()
	}
	if procs != nil {
		var ps []Process
		if json.Unmarshal(procs, &ps) == nil {
			m.SetProcesses(ps)
		}
	}
}

// machineID reads a machine object and returns its id.
func (s *scanner) machineID() []byte {
	var id []byte
	s.expect('{')
	for n := 0; s.next('}', &n); {
		if string(s.key()) == "id" {
			id = s.str()
		} else {
			s.skip()
		}
	}
	if len(id) == 0 {
		s.fail()
	}
	return id
}

// SetProcesses replaces the top-process list (strings are sanitised).
func (m *Machine) SetProcesses(ps []Process) {
	if len(ps) > 100 {
		ps = ps[:100]
	}
	for i := range ps {
		ps[i].Name, ps[i].User, ps[i].Command = Clean(ps[i].Name), Clean(ps[i].User), Clean(ps[i].Command)
	}
	m.Processes = ps
}
