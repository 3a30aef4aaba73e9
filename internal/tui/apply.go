package tui

import (
	"bytes"
	"math"
)

// Bounds on what one machine may make the dashboard keep, so a hostile or
// broken agent cannot grow it without limit.
const (
	maxCores  = 1024
	maxPerSet = 64 // filesystems, disks, interfaces, extras (each)
)

// point is one metric value on its way into a Machine. The byte slices
// point into the message being decoded and are only copied when a new
// filesystem, device or interface appears.
type point struct {
	name                                  []byte
	cpu, mount, device, fstype, iface, id []byte  // id: unit, service, sensor or chip label of deep collectors
	value                                 float64 // NaN for null
}

func (p *point) reset() { *p = point{value: math.NaN()} }

// setLabel records the labels the views use; others are ignored. The switch
// on string(k) does not allocate.
func (p *point) setLabel(k, v []byte) {
	switch string(k) {
	case "cpu":
		p.cpu = v
	case "mountpoint":
		p.mount = v
	case "device":
		p.device = v
	case "fstype":
		p.fstype = v
	case "interface":
		p.iface = v
	case "unit", "service", "sensor", "chip", "name":
		if len(p.id) == 0 {
			p.id = v
		}
	}
}

// apply stores p in m.
func (m *Machine) apply(p *point) {
	v := p.value
	switch string(p.name) {
	case "cpu_usage_percent":
		if len(p.cpu) == 0 || string(p.cpu) == "total" {
			m.CPU = v
			return
		}
		n, ok := atoi(p.cpu)
		if !ok || n >= maxCores {
			return
		}
		for len(m.Cores) <= n {
			m.Cores = append(m.Cores, math.NaN())
		}
		m.Cores[n] = v
	case "load1":
		m.Load1 = v
	case "load5":
		m.Load5 = v
	case "load15":
		m.Load15 = v
	case "memory_usage_percent":
		m.MemPct = v
	case "memory_used_bytes":
		m.MemUsed = v
	case "memory_total_bytes":
		m.MemTotal = v
	case "swap_total_bytes":
		m.SwapTotal = v
	case "swap_used_bytes":
		m.SwapUsed = v
	case "processes_total":
		m.Procs = v
	case "uptime_seconds":
		m.Uptime = v
	case "filesystem_size_bytes":
		if fs := m.fs(p); fs != nil {
			fs.Size = v
		}
	case "filesystem_used_bytes":
		if fs := m.fs(p); fs != nil {
			fs.Used = v
		}
	case "filesystem_usage_percent":
		if fs := m.fs(p); fs != nil {
			fs.Pct = v
		}
	case "disk_read_bytes_per_second":
		if d := ioPair(&m.Disks, p.device); d != nil {
			d.A = v
		}
	case "disk_write_bytes_per_second":
		if d := ioPair(&m.Disks, p.device); d != nil {
			d.B = v
		}
	case "network_receive_bytes_per_second":
		if n := ioPair(&m.NICs, p.iface); n != nil {
			n.A = v
		}
	case "network_transmit_bytes_per_second":
		if n := ioPair(&m.NICs, p.iface); n != nil {
			n.B = v
		}
	default:
		if kind := extraKind(p.name); kind != "" {
			m.extra(kind, p)
		}
	}
}

// fs returns the filesystem of p's mountpoint, adding it.
func (m *Machine) fs(p *point) *Filesystem {
	for i := range m.FS {
		if m.FS[i].key == string(p.mount) {
			return &m.FS[i]
		}
	}
	if len(m.FS) >= maxPerSet {
		return nil
	}
	nan := math.NaN()
	key := string(p.mount)
	m.FS = append(m.FS, Filesystem{key: key, Mount: Clean(key), Device: Clean(string(p.device)), FSType: Clean(string(p.fstype)), Size: nan, Used: nan, Pct: nan})
	return &m.FS[len(m.FS)-1]
}

func ioPair(ps *[]IOPair, name []byte) *IOPair {
	for i := range *ps {
		if (*ps)[i].key == string(name) {
			return &(*ps)[i]
		}
	}
	if len(*ps) >= maxPerSet {
		return nil
	}
	key := string(name)
	*ps = append(*ps, IOPair{key: key, Name: Clean(key), A: math.NaN(), B: math.NaN()})
	return &(*ps)[len(*ps)-1]
}

func (m *Machine) extra(kind string, p *point) {
	name := p.id
	if len(name) == 0 {
		name = p.device
	}
	for i := range m.Extras {
		e := &m.Extras[i]
		if e.Metric == string(p.name) && e.key == string(name) {
			e.Value = p.value
			return
		}
	}
	if len(m.Extras) >= maxPerSet {
		return
	}
	key := string(name)
	m.Extras = append(m.Extras, Extra{Kind: kind, Metric: Clean(string(p.name)), key: key, Name: Clean(key), Value: p.value})
}

// extraKind classifies the series of deep collectors the dashboard shows:
// services (service_*/systemd_unit_* ending in _active, _up or _ok; value
// > 0 is healthy), SMART/NVMe (smart_*, nvme_*) and temperatures (names
// containing "temperature"). Anything else is not kept.
func extraKind(name []byte) string {
	switch {
	case bytes.HasPrefix(name, []byte("service_")) || bytes.HasPrefix(name, []byte("systemd_unit_")):
		if bytes.HasSuffix(name, []byte("_active")) || bytes.HasSuffix(name, []byte("_up")) || bytes.HasSuffix(name, []byte("_ok")) {
			return "service"
		}
	case bytes.HasPrefix(name, []byte("smart_")) || bytes.HasPrefix(name, []byte("nvme_")):
		return "smart"
	case bytes.Contains(name, []byte("temperature")):
		return "temperature"
	}
	return ""
}

// atoi parses a small non-negative decimal.
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 6 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
