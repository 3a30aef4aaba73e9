package collect

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
)

// sectorSize is the unit of /proc/diskstats sector counters, whatever the
// device's real sector size.
const sectorSize = 512

// diskIgnore is node_exporter's default device exclude, plus CD-ROMs (sr*)
// and MMC partitions: partitions and virtual devices are left out, so only
// whole devices remain (dm-* and md* are kept).
var diskIgnore = regexp.MustCompile(`^(z?ram|loop|fd|sr|(h|s|v|xv)d[a-z]+|nvme\d+n\d+p|mmcblk\d+p)\d+$`)

// diskLine is the part of a /proc/diskstats line the disk collector uses.
type diskLine struct {
	name         []byte // valid until the buffer is reused
	readSectors  uint64
	writeSectors uint64
	ioTicks      uint64 // ms spent doing I/O
}

// parseDiskstats calls fn for every device line of /proc/diskstats
// ("254 0 vda 75240 10126 2353290 25574 31482 73062 5196904 25941 0 16480 …").
func parseDiskstats(b []byte, fn func(diskLine)) error {
	var f [10]uint64
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		_, rest := nextField(line) // major
		_, rest = nextField(rest)  // minor
		name, rest := nextField(rest)
		if len(name) == 0 {
			continue // blank line
		}
		if parseUints(rest, f[:]) < len(f) {
			return fmt.Errorf("diskstats %s: %w", name, errSyntax)
		}
		fn(diskLine{name: name, readSectors: f[2], writeSectors: f[6], ioTicks: f[9]})
	}
	return nil
}

// Disk reports disk_read_bytes_per_second, disk_write_bytes_per_second and
// disk_io_time_percent per whole device from /proc/diskstats.
type Disk struct {
	file    *procFile
	clock   rateClock
	devices internedNames // prev: read sectors, write sectors, io ms
}

// NewDisk returns the disk I/O collector.
func NewDisk(opts Options) *Disk {
	opts = opts.withDefaults()
	return &Disk{file: newKeptProcFile(filepath.Join(opts.ProcPath, "diskstats"))}
}

// Name implements Collector.
func (*Disk) Name() string { return "disk" }

func ignoreDisk(name string) bool { return diskIgnore.MatchString(name) }

// Collect implements Collector. The first tick, and the first tick of a new
// device, emit nothing: rates need two readings.
func (c *Disk) Collect(_ context.Context, b *Batch) error {
	data, err := c.file.read()
	if err != nil {
		return err
	}
	secs := c.clock.advance()
	gen := c.clock.gen
	err = parseDiskstats(data, func(l diskLine) {
		st := c.devices.get(l.name, gen, ignoreDisk)
		if st.skip {
			return
		}
		cur := [3]uint64{l.readSectors, l.writeSectors, l.ioTicks}
		if st.valid {
			r, okR := perSecond(st.prev[0]*sectorSize, cur[0]*sectorSize, secs)
			w, okW := perSecond(st.prev[1]*sectorSize, cur[1]*sectorSize, secs)
			if okR && okW {
				b.Add("disk_read_bytes_per_second", r, "device", st.name)
				b.Add("disk_write_bytes_per_second", w, "device", st.name)
			}
			if cur[2] >= st.prev[2] && secs > 0 {
				busy := float64(cur[2]-st.prev[2]) / (secs * 1000) * 100
				b.Add("disk_io_time_percent", round2(clampPercent(busy)), "device", st.name)
			}
		}
		st.prev, st.valid = cur, true
	})
	c.devices.sweep(gen)
	return err
}
