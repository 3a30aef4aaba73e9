package collect

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	f := func(in string, want []cpuTimes) {
		t.Helper()
		got, err := parseStatCPU([]byte(in), nil)
		if err != nil {
			t.Fatalf("parseStatCPU(%q): %v", in, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parseStatCPU(%q)\n got %+v\nwant %+v", in, got, want)
		}
	}
	f("cpu  21428 0 9069 94786 795 0 205 953 0 0\ncpu0 10167 0 3798 49076 58 0 32 503 0 0\nintr 1 2 3\nbtime 1\n",
		[]cpuTimes{{id: -1, total: 127236, idle: 95581}, {id: 0, total: 63634, idle: 49134}})
	// Old kernel: four fields only; cpu ids with gaps (offline cpus).
	f("cpu 1 2 3 4\ncpu3 1 1 1 1\n", []cpuTimes{{id: -1, total: 10, idle: 4}, {id: 3, total: 4, idle: 1}})

	for _, bad := range []string{"", "intr 1 2\n", "cpu 1 2 x 4\n", "cpuX 1 2 3 4\n"} {
		if _, err := parseStatCPU([]byte(bad), nil); !errors.Is(err, errSyntax) {
			t.Errorf("parseStatCPU(%q) err = %v, want errSyntax", bad, err)
		}
	}
}

func TestBusyPercent(t *testing.T) {
	f := func(prev, cur cpuTimes, want float64, wantOK bool) {
		t.Helper()
		got, ok := busyPercent(prev, cur)
		if got != want || ok != wantOK {
			t.Fatalf("busyPercent(%+v, %+v) = %v, %v; want %v, %v", prev, cur, got, ok, want, wantOK)
		}
	}
	f(cpuTimes{total: 100, idle: 50}, cpuTimes{total: 200, idle: 125}, 25, true)
	f(cpuTimes{total: 100, idle: 50}, cpuTimes{total: 400, idle: 50}, 100, true)
	f(cpuTimes{total: 0, idle: 0}, cpuTimes{total: 3, idle: 2}, 33.33, true)
	f(cpuTimes{total: 100, idle: 50}, cpuTimes{total: 100, idle: 50}, 0, false)  // no time passed
	f(cpuTimes{total: 100, idle: 50}, cpuTimes{total: 10, idle: 5}, 0, false)    // counter reset
	f(cpuTimes{total: 100, idle: 50}, cpuTimes{total: 200, idle: 40}, 100, true) // iowait stepped back
}

func TestParseLoadavg(t *testing.T) {
	got, err := parseLoadavg([]byte("0.50 0.71 12.43 1/143 12093\n"))
	if err != nil || got != [3]float64{0.5, 0.71, 12.43} {
		t.Fatalf("parseLoadavg = %v, %v", got, err)
	}
	for _, bad := range []string{"", "0.5 0.7", "a b c"} {
		if _, err := parseLoadavg([]byte(bad)); err == nil {
			t.Errorf("parseLoadavg(%q): want error", bad)
		}
	}
}

func TestParseMeminfo(t *testing.T) {
	f := func(in string, want meminfo) {
		t.Helper()
		got, err := parseMeminfo([]byte(in))
		if err != nil {
			t.Fatalf("parseMeminfo(%q): %v", in, err)
		}
		if got != want {
			t.Fatalf("parseMeminfo(%q)\n got %+v\nwant %+v", in, got, want)
		}
	}
	f("MemTotal:  1000 kB\nMemFree: 100 kB\nMemAvailable: 600 kB\nBuffers: 10 kB\nCached: 200 kB\nSwapTotal: 50 kB\nSwapFree: 20 kB\nHugePages_Total: 7\n",
		meminfo{total: 1024000, free: 102400, available: 614400, buffers: 10240, cached: 204800,
			swapTotal: 51200, swapFree: 20480, hasAvailable: true})
	// Before Linux 3.14: available approximated by free+buffers+cached.
	f("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 10 kB\nCached: 200 kB\n",
		meminfo{total: 1024000, free: 102400, available: 317440, buffers: 10240, cached: 204800})
	if _, err := parseMeminfo([]byte("MemFree: 1 kB\n")); err == nil {
		t.Fatal("want error without MemTotal")
	}
	if _, err := parseMeminfo([]byte("MemTotal: x kB\n")); err == nil {
		t.Fatal("want error for a non-number")
	}
}

func TestParseUptime(t *testing.T) {
	if v, err := parseUptime([]byte("640.03 947.87\n")); err != nil || v != 640.03 {
		t.Fatalf("parseUptime = %v, %v", v, err)
	}
	if _, err := parseUptime([]byte("")); err == nil {
		t.Fatal("want error")
	}
}

func TestParseDiskstats(t *testing.T) {
	in := "   8       0 sda 75240 10126 2353290 25574 31482 73062 5196904 25941 0 16480 53120 10858 52\n" +
		" 259       0 nvme0n1 1000 0 80000 100 2000 0 160000 200 0 300 300\n\n"
	var got []string
	var lines []diskLine
	err := parseDiskstats([]byte(in), func(l diskLine) {
		got = append(got, string(l.name))
		l.name = nil
		lines = append(lines, l)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []diskLine{{readSectors: 2353290, writeSectors: 5196904, ioTicks: 16480}, {readSectors: 80000, writeSectors: 160000, ioTicks: 300}}
	if !reflect.DeepEqual(got, []string{"sda", "nvme0n1"}) || !reflect.DeepEqual(lines, want) {
		t.Fatalf("parseDiskstats = %v %+v", got, lines)
	}
	if err := parseDiskstats([]byte("8 0 sda 1 2 3\n"), func(diskLine) {}); !errors.Is(err, errSyntax) {
		t.Fatalf("short line: err = %v", err)
	}
}

func TestIgnoreDisk(t *testing.T) {
	for name, want := range map[string]bool{
		"sda": false, "vda": false, "xvdb": false, "nvme0n1": false, "dm-0": false, "md127": false,
		"mmcblk0": false, "sdaa": false,
		"sda1": true, "sdaa12": true, "vdb3": true, "xvda1": true, "hda2": true, "nvme0n1p1": true,
		"mmcblk0p2": true, "loop0": true, "ram1": true, "zram0": true, "fd0": true, "sr0": true,
	} {
		if got := ignoreDisk(name); got != want {
			t.Errorf("ignoreDisk(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestParseNetDev(t *testing.T) {
	in := "Inter-|   Receive                                                |  Transmit\n" +
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n" +
		"    lo:   50610     655    0    0    0     0          0         0    50610     655    0    0    0     0       0          0\n" +
		"  eth0:307431819   16076    0    0    0     0          0         0  1233463   11005    0    0    0     0       0          0\n"
	got := map[string][2]uint64{}
	if err := parseNetDev([]byte(in), func(l netLine) { got[string(l.name)] = [2]uint64{l.rxBytes, l.txBytes} }); err != nil {
		t.Fatal(err)
	}
	want := map[string][2]uint64{"lo": {50610, 50610}, "eth0": {307431819, 1233463}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseNetDev = %v, want %v", got, want)
	}
	if err := parseNetDev([]byte("eth0: 1 2 3\n"), func(netLine) {}); !errors.Is(err, errSyntax) {
		t.Fatalf("short line: err = %v", err)
	}
}

func TestIgnoreInterface(t *testing.T) {
	for name, want := range map[string]bool{"lo": true, "veth1a2b": true, "eth0": false, "docker0": false, "br-1234": false, "wlan0": false} {
		if got := ignoreInterface(name); got != want {
			t.Errorf("ignoreInterface(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestParseMountinfo(t *testing.T) {
	in := "27 1 8:0 / / rw,relatime shared:1 - ext4 /dev/sda rw,discard\n" +
		"36 27 253:1 / /media/my\\040disk rw,relatime - ext4 /dev/mapper/my\\040disk rw\n" +
		"33 27 0:41 / /mnt/nas rw,relatime master:7 shared:9 - nfs4 nas:/export rw,vers=4.2\n"
	got, err := parseMountinfo([]byte(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []mount{
		{devID: "8:0", mountpoint: "/", fstype: "ext4", device: "/dev/sda"},
		{devID: "253:1", mountpoint: "/media/my disk", fstype: "ext4", device: "/dev/mapper/my disk"},
		{devID: "0:41", mountpoint: "/mnt/nas", fstype: "nfs4", device: "nas:/export"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseMountinfo\n got %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{"27 1 8:0 / /\n", "27 1 8:0 / / rw shared:1 ext4 /dev/sda rw\n"} {
		if _, err := parseMountinfo([]byte(bad), nil); !errors.Is(err, errSyntax) {
			t.Errorf("parseMountinfo(%q) err = %v", bad, err)
		}
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`: "/plain", `/a\040b`: "/a b", `/t\011ab`: "/t\tab", `/back\134slash`: `/back\slash`,
		`/short\04`: `/short\04`, `/bad\089`: `/bad\089`,
	} {
		if got := unescapeMountinfo([]byte(in)); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRealFilesystems(t *testing.T) {
	in := []mount{
		{devID: "0:21", mountpoint: "/proc", fstype: "proc"},
		{devID: "8:1", mountpoint: "/srv/bind", fstype: "ext4", device: "/dev/sda1"}, // bind mount seen first
		{devID: "8:1", mountpoint: "/", fstype: "ext4", device: "/dev/sda1"},
		{devID: "0:23", mountpoint: "/dev/shm", fstype: "tmpfs"},
		{devID: "8:2", mountpoint: "/dev/custom", fstype: "ext4"},
		{devID: "0:28", mountpoint: "/sys/fs/cgroup/cpu", fstype: "cgroup"},
		{devID: "0:29", mountpoint: "/weird", fstype: "cgroup3"},
		{devID: "0:42", mountpoint: "/var/lib/docker/overlay2/x/merged", fstype: "overlay"},
		{devID: "8:3", mountpoint: "/var/lib/docker", fstype: "xfs", device: "/dev/sdb"},
		{devID: "8:4", mountpoint: "/var/lib/docker/volumes/v", fstype: "xfs"},
		{devID: "8:5", mountpoint: "/run/credentials/x.service", fstype: "ext4"},
		{devID: "8:6", mountpoint: "/snap/core/1", fstype: "ext4"},
		{devID: "8:7", mountpoint: "/system", fstype: "ext4", device: "/dev/sdc"}, // not under /sys
		{devID: "0:50", mountpoint: "/mnt/nas", fstype: "nfs4", device: "nas:/e"},
		{devID: "0:51", mountpoint: "/var/lib/lxcfs", fstype: "fuse.lxcfs"},
	}
	var got []string
	for _, m := range realFilesystems(in) {
		got = append(got, m.mountpoint+" "+m.device)
	}
	want := []string{"/ /dev/sda1", "/var/lib/docker /dev/sdb", "/system /dev/sdc", "/mnt/nas nas:/e"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("realFilesystems\n got %q\nwant %q", got, want)
	}
}

func TestParseProcsStat(t *testing.T) {
	r, b, err := parseProcsStat([]byte("cpu 1 2 3 4\nprocesses 12093\nprocs_running 5\nprocs_blocked 1\nsoftirq 1\n"))
	if err != nil || r != 5 || b != 1 {
		t.Fatalf("parseProcsStat = %d, %d, %v", r, b, err)
	}
	if _, _, err := parseProcsStat([]byte("procs_running 5\n")); err == nil {
		t.Fatal("want error without procs_blocked")
	}
}

func TestParseCPUInfo(t *testing.T) {
	f := func(in, wantModel string, wantCores, wantThreads uint32) {
		t.Helper()
		m, c, th := parseCPUInfo([]byte(in))
		if m != wantModel || c != wantCores || th != wantThreads {
			t.Fatalf("parseCPUInfo = %q, %d, %d; want %q, %d, %d", m, c, th, wantModel, wantCores, wantThreads)
		}
	}
	// Two sockets, two cores each, hyperthreaded.
	x86 := ""
	for i, pc := range [][2]int{{0, 0}, {0, 1}, {1, 0}, {1, 1}, {0, 0}, {0, 1}, {1, 0}, {1, 1}} {
		x86 += "processor\t: " + itoa(i) + "\nmodel name\t: Intel(R) Xeon(R)\nphysical id\t: " + itoa(pc[0]) + "\ncore id\t\t: " + itoa(pc[1]) + "\n\n"
	}
	f(x86, "Intel(R) Xeon(R)", 4, 8)
	// arm64: no model name, no core ids.
	f("processor\t: 0\nBogoMIPS\t: 50.00\nCPU part\t: 0xd0c\n\nprocessor\t: 1\nBogoMIPS\t: 50.00\n\nHardware\t: BCM2835\n", "BCM2835", 0, 2)
}

func itoa(i int) string { return string(rune('0' + i)) }

func TestParseOSRelease(t *testing.T) {
	for in, want := range map[string]string{
		"NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n": "Debian GNU/Linux 12 (bookworm)",
		"ID=alpine\nVERSION_ID=3.19.1\n":                                               "alpine 3.19.1",
		"# comment\nID='arch'\n":                                                       "arch",
		"":                                                                             "",
	} {
		if got := parseOSRelease([]byte(in)); got != want {
			t.Errorf("parseOSRelease(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseBootTime(t *testing.T) {
	got, err := parseBootTime([]byte("cpu 1 2 3 4\nbtime 1795629822\n"))
	if err != nil || !got.Equal(time.Unix(1795629822, 0)) {
		t.Fatalf("parseBootTime = %v, %v", got, err)
	}
	if _, err := parseBootTime([]byte("cpu 1 2 3 4\n")); err == nil {
		t.Fatal("want error without btime")
	}
}

func TestParseUint(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, "42": 42, "18446744073709551615": 1<<64 - 1} {
		if got, ok := parseUint([]byte(in)); !ok || got != want {
			t.Errorf("parseUint(%q) = %d, %v", in, got, ok)
		}
	}
	for _, bad := range []string{"", "-1", "1a", "18446744073709551616"} {
		if _, ok := parseUint([]byte(bad)); ok {
			t.Errorf("parseUint(%q): want failure", bad)
		}
	}
}
