//go:build linux

package collect

import (
	"testing"

	"github.com/prometheus/procfs"
	"github.com/prometheus/procfs/blockdevice"
)

// BenchmarkParseVsProcfs measures why the per-second files are parsed by hand
// (doc.go): each pair reads the same real /proc file once per op, with this
// package's parser ("own") and with github.com/prometheus/procfs ("procfs").
//
//	go test -run '^$' -bench ParseVsProcfs -benchmem ./internal/collect
func BenchmarkParseVsProcfs(b *testing.B) {
	fs, err := procfs.NewFS("/proc")
	if err != nil {
		b.Skip(err)
	}
	bd, err := blockdevice.NewFS("/proc", "/sys")
	if err != nil {
		b.Skip(err)
	}
	buf := make([]byte, 4096)
	read := func(b *testing.B, path string) []byte {
		n, err := readFull(path, &buf)
		if err != nil {
			b.Fatal(err)
		}
		return buf[:n]
	}
	var cpus []cpuTimes
	var mounts []mount
	cases := []struct {
		name   string
		own    func(b *testing.B)
		procfs func(b *testing.B)
	}{
		{"stat",
			func(b *testing.B) {
				var err error
				if cpus, err = parseStatCPU(read(b, "/proc/stat"), cpus[:0]); err != nil {
					b.Fatal(err)
				}
			},
			func(b *testing.B) {
				if _, err := fs.Stat(); err != nil {
					b.Fatal(err)
				}
			}},
		{"meminfo",
			func(b *testing.B) {
				if _, err := parseMeminfo(read(b, "/proc/meminfo")); err != nil {
					b.Fatal(err)
				}
			},
			func(b *testing.B) {
				if _, err := fs.Meminfo(); err != nil {
					b.Fatal(err)
				}
			}},
		{"net_dev",
			func(b *testing.B) {
				if err := parseNetDev(read(b, "/proc/net/dev"), func(netLine) {}); err != nil {
					b.Fatal(err)
				}
			},
			func(b *testing.B) {
				if _, err := fs.NetDev(); err != nil {
					b.Fatal(err)
				}
			}},
		{"diskstats",
			func(b *testing.B) {
				if err := parseDiskstats(read(b, "/proc/diskstats"), func(diskLine) {}); err != nil {
					b.Fatal(err)
				}
			},
			func(b *testing.B) {
				if _, err := bd.ProcDiskstats(); err != nil {
					b.Fatal(err)
				}
			}},
		{"mountinfo",
			func(b *testing.B) {
				var err error
				if mounts, err = parseMountinfo(read(b, "/proc/self/mountinfo"), mounts[:0]); err != nil {
					b.Fatal(err)
				}
			},
			func(b *testing.B) {
				if _, err := procfs.GetMounts(); err != nil {
					b.Fatal(err)
				}
			}},
	}
	for _, c := range cases {
		b.Run(c.name+"/own", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.own(b)
			}
		})
		b.Run(c.name+"/procfs", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.procfs(b)
			}
		})
	}
}
