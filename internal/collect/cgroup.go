package collect

import (
	"bytes"
	"math"
	"os"
	"path/filepath"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// cgroupV2 reports whether the cgroup root is a unified (v2) hierarchy.
func cgroupV2(root string) bool {
	_, err := os.Stat(filepath.Join(root, "cgroup.controllers"))
	return err == nil
}

// parseKeyed returns the value of "key N" in a flat keyed file (cpu.stat,
// memory.stat).
func parseKeyed(b []byte, key string) (uint64, bool) {
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		k, rest := nextField(line)
		if string(k) == key {
			v, _ := nextField(rest)
			return parseUint(v)
		}
	}
	return 0, false
}

// parseIOStat sums rbytes and wbytes over the devices of a cgroup v2 io.stat
// ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0").
func parseIOStat(b []byte) (rbytes, wbytes uint64) {
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		_, rest := nextField(line) // MAJ:MIN
		for len(rest) > 0 {
			var f []byte
			f, rest = nextField(rest)
			if len(f) == 0 {
				break
			}
			eq := bytes.IndexByte(f, '=')
			if eq < 0 {
				continue
			}
			v, ok := parseUint(f[eq+1:])
			if !ok {
				continue
			}
			switch string(f[:eq]) {
			case "rbytes":
				rbytes += v
			case "wbytes":
				wbytes += v
			}
		}
	}
	return rbytes, wbytes
}

// cgroupUsage is one reading of a cgroup's counters.
type cgroupUsage struct {
	cpuUsec        uint64 // CPU time used, µs
	memory         uint64 // bytes, per the reader's definition
	rbytes, wbytes uint64 // bytes read / written
	hasMem, hasIO  bool
}

// cgroupReader reads one cgroup's usage into reused buffers. v2 reads
// cpu.stat, memory.current (minus memory.stat inactive_file when
// minusInactive), io.stat; v1 reads cpuacct.usage and
// memory.usage_in_bytes only.
type cgroupReader struct {
	v2            bool
	minusInactive bool
	cpu, mem, io  *procFile
	memStat       *procFile
}

// newCgroupReader returns a reader for the cgroup at dir (v2), or for the
// unit's directories under the v1 cpuacct and memory hierarchies.
func newCgroupV2Reader(dir string, minusInactive bool) *cgroupReader {
	r := &cgroupReader{v2: true, minusInactive: minusInactive,
		cpu: newProcFile(filepath.Join(dir, "cpu.stat")),
		mem: newProcFile(filepath.Join(dir, "memory.current")),
		io:  newProcFile(filepath.Join(dir, "io.stat"))}
	if minusInactive {
		r.memStat = newProcFile(filepath.Join(dir, "memory.stat"))
	}
	return r
}

func newCgroupV1Reader(cpuacctDir, memDir string) *cgroupReader {
	return &cgroupReader{
		cpu: newProcFile(filepath.Join(cpuacctDir, "cpuacct.usage")),
		mem: newProcFile(filepath.Join(memDir, "memory.usage_in_bytes")),
	}
}

// read returns the counters; false when the cgroup is gone (the CPU file
// cannot be read).
func (r *cgroupReader) read() (u cgroupUsage, ok bool) {
	data, err := r.cpu.read()
	if err != nil {
		return u, false
	}
	if r.v2 {
		if u.cpuUsec, ok = parseKeyed(data, "usage_usec"); !ok {
			return u, false
		}
	} else {
		ns, ok := parseUint(bytes.TrimSpace(data))
		if !ok {
			return u, false
		}
		u.cpuUsec = ns / 1000
	}
	if data, err := r.mem.read(); err == nil {
		u.memory, u.hasMem = parseUint(bytes.TrimSpace(data))
		if u.hasMem && r.memStat != nil {
			if st, err := r.memStat.read(); err == nil {
				if inactive, ok := parseKeyed(st, "inactive_file"); ok && inactive < u.memory {
					u.memory -= inactive
				}
			}
		}
	}
	if r.v2 && r.io != nil {
		if data, err := r.io.read(); err == nil {
			u.rbytes, u.wbytes = parseIOStat(data)
			u.hasIO = true
		}
	}
	return u, true
}

// cgroupRates turns two readings secs apart into CPU percent of one core
// and I/O bytes/s.
func cgroupRates(prev, cur cgroupUsage, secs float64) (cpuPct, rps, wps float64, ok bool) {
	if secs <= 0 || cur.cpuUsec < prev.cpuUsec {
		return 0, 0, 0, false
	}
	cpuPct = round2(float64(cur.cpuUsec-prev.cpuUsec) / (secs * 1e6) * 100)
	if cur.hasIO && prev.hasIO {
		var okR, okW bool
		rps, okR = perSecond(prev.rbytes, cur.rbytes, secs)
		wps, okW = perSecond(prev.wbytes, cur.wbytes, secs)
		if !okR || !okW {
			rps, wps = math.NaN(), math.NaN()
		}
	} else {
		rps, wps = math.NaN(), math.NaN()
	}
	return cpuPct, rps, wps, true
}

// cgroupNames are the series one kind of cgroup (systemd unit, container)
// reports its usage under.
type cgroupNames struct{ memory, cpu, ioRead, ioWrite string }

var (
	unitCgroupNames = cgroupNames{
		memory: "systemd_unit_memory_bytes", cpu: "systemd_unit_cpu_usage_percent",
		ioRead: "systemd_unit_io_read_bytes_per_second", ioWrite: "systemd_unit_io_write_bytes_per_second",
	}
	containerCgroupNames = cgroupNames{
		memory: "container_memory_usage_bytes", cpu: "container_cpu_usage_percent",
		ioRead: "container_io_read_bytes_per_second", ioWrite: "container_io_write_bytes_per_second",
	}
)

// emit adds cur's memory and, when prev is a valid earlier reading, the CPU
// and I/O rates over secs seconds since it.
func (n cgroupNames) emit(b *Batch, ls metric.Labels, prev cgroupUsage, prevValid bool, cur cgroupUsage, secs float64) {
	if cur.hasMem {
		b.addShared(n.memory, float64(cur.memory), ls)
	}
	if !prevValid {
		return
	}
	if pct, r, w, ok := cgroupRates(prev, cur, secs); ok {
		b.addShared(n.cpu, pct, ls)
		if !math.IsNaN(r) {
			b.addShared(n.ioRead, r, ls)
			b.addShared(n.ioWrite, w, ls)
		}
	}
}
