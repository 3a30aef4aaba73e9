package collect

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// restartFixture is the container collector over a private copy of the
// fixture cgroup tree, on a fake clock, without runtime API sockets (the
// containers are named by their short ids).
type restartFixture struct {
	t     *testing.T
	root  string
	clock *fakeClock
	c     *Containers
}

func newRestartFixture(t *testing.T) *restartFixture {
	t.Helper()
	root := copyFixture(t)
	f := &restartFixture{t: t, root: root, clock: newFakeClock(),
		c: NewContainers(Options{SysPath: filepath.Join(root, "sys"), ProcPath: filepath.Join(root, "ctproc"), RootFS: root})}
	f.c.DockerSocket, f.c.PodmanSocket = "", ""
	f.c.now, f.c.clock.now, f.c.names.now = f.clock.now, f.clock.now, f.clock.now
	t.Cleanup(f.c.names.wait)
	return f
}

// tick advances the clock by d and collects once.
func (f *restartFixture) tick(d time.Duration) []string {
	f.t.Helper()
	f.clock.advance(d)
	return collectOnce(f.t, f.c)
}

// dockerDir is the Docker container's cgroup in the fixture.
func (f *restartFixture) dockerDir() string {
	return filepath.Join(f.root, "sys", "fs", "cgroup", "system.slice", "docker-"+dockerID+".scope")
}

// hold moves dir out of the cgroup tree and returns where it went; the
// directory keeps its inode.
func (f *restartFixture) hold(dir string) string {
	f.t.Helper()
	held := filepath.Join(f.t.TempDir(), "held")
	if err := os.Rename(dir, held); err != nil {
		f.t.Fatal(err)
	}
	return held
}

// recreate makes a new directory dir (a new inode: held still exists) with
// copies of held's files.
func (f *restartFixture) recreate(held, dir string) {
	f.t.Helper()
	if err := os.Mkdir(dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	ents, err := os.ReadDir(held)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(held, e.Name()))
		if err != nil {
			f.t.Fatal(err)
		}
		writeFile(f.t, filepath.Join(dir, e.Name()), string(b))
	}
}

// seriesOf returns the samples in got whose id label is id.
func seriesOf(got []string, id string) []string {
	var out []string
	for _, s := range got {
		if strings.Contains(s, `id="`+id+`"`) {
			out = append(out, s)
		}
	}
	return out
}

// restartsOf returns the container_restarts_total values in got by id label.
func restartsOf(got []string) map[string]string {
	m := map[string]string{}
	for _, s := range got {
		rest, ok := strings.CutPrefix(s, "container_restarts_total{")
		if !ok {
			continue
		}
		_, rest, _ = strings.Cut(rest, `id="`)
		id, rest, _ := strings.Cut(rest, `"`)
		_, v, _ := strings.Cut(rest, "} ")
		m[id] = v
	}
	return m
}

// wantRestarts checks the container_restarts_total values by id label; an
// empty value means no series for that id at all.
func wantRestarts(t *testing.T, what string, got []string, want map[string]string) {
	t.Helper()
	have := restartsOf(got)
	for id, v := range want {
		if v == "" {
			if s := seriesOf(got, id); len(s) > 0 {
				t.Fatalf("%s: absent container %s has series %q", what, id, s)
			}
			continue
		}
		if have[id] != v {
			t.Fatalf("%s: container_restarts_total{id=%q} = %q, want %q\n%q", what, id, have[id], v, got)
		}
	}
}

// hasSeries reports whether got holds the named series for id.
func hasSeries(got []string, name, id string) bool {
	return slices.ContainsFunc(seriesOf(got, id), func(s string) bool { return strings.HasPrefix(s, name+"{") })
}

const (
	dockerShort = "3f4e5d6c7b8a"
	podmanShort = "0a1b2c3d4e5f"
)

func TestContainerRestartVanishAndReturn(t *testing.T) {
	root := copyFixture(t)
	sock := serveDockerAPI(t, `[{"Id":"`+dockerID+`","Names":["/web"]}]`)
	clock := newFakeClock()
	c := NewContainers(Options{SysPath: filepath.Join(root, "sys"), ProcPath: filepath.Join(root, "ctproc"), RootFS: root})
	c.DockerSocket, c.PodmanSocket = sock, ""
	c.now, c.clock.now, c.names.now = clock.now, clock.now, clock.now
	t.Cleanup(c.names.wait)
	f := &restartFixture{t: t, root: root, clock: clock, c: c}

	f.tick(0) // waits for the API
	c.names.wait()
	got := f.tick(time.Second)
	want := `container_restarts_total{container="web",id="3f4e5d6c7b8a",runtime="docker"} 0`
	if !slices.Contains(got, want) {
		t.Fatalf("first seen: want %s in %q", want, got)
	}
	wantRestarts(t, "first seen", got, map[string]string{podmanShort: "0"})

	held := f.hold(f.dockerDir())
	wantRestarts(t, "read fails", f.tick(time.Second), map[string]string{dockerShort: "", podmanShort: "0"})
	wantRestarts(t, "listing misses it", f.tick(time.Second), map[string]string{dockerShort: "", podmanShort: "0"})
	for range 3 {
		wantRestarts(t, "still gone", f.tick(5*time.Second), map[string]string{dockerShort: "", podmanShort: "0"})
	}
	f.clock.advance(10 * time.Minute)
	wantRestarts(t, "gone 10 min", f.tick(5*time.Second), map[string]string{dockerShort: ""})

	if err := os.Rename(held, f.dockerDir()); err != nil {
		t.Fatal(err)
	}
	got = f.tick(5 * time.Second)
	// Back under the name it had, counted once; no rate spans the gap.
	wantSamples(t, "back", seriesOf(got, dockerShort),
		`container_memory_usage_bytes{container="web",id="3f4e5d6c7b8a",runtime="docker"} 104857600`,
		`container_restarts_total{container="web",id="3f4e5d6c7b8a",runtime="docker"} 1`,
	)
	wantRestarts(t, "back", got, map[string]string{podmanShort: "0"})
	writeFile(t, filepath.Join(f.dockerDir(), "cpu.stat"), "usage_usec 2500000\n")
	got = f.tick(time.Second)
	if !slices.Contains(got, `container_cpu_usage_percent{container="web",id="3f4e5d6c7b8a",runtime="docker"} 50`) {
		t.Fatalf("rates did not resume after the return: %q", seriesOf(got, dockerShort))
	}
	wantRestarts(t, "running again", got, map[string]string{dockerShort: "1", podmanShort: "0"})
}

func TestContainerRestartUsageBackwards(t *testing.T) {
	f := newRestartFixture(t)
	f.tick(0)
	got := f.tick(time.Second)
	if !hasSeries(got, "container_cpu_usage_percent", dockerShort) || !hasSeries(got, "container_network_receive_bytes_per_second", dockerShort) {
		t.Fatalf("tick 2 lacks rates: %q", got)
	}
	wantRestarts(t, "tick 2", got, map[string]string{dockerShort: "0", podmanShort: "0"})

	// A new cgroup under the same path between two reads: usage_usec and
	// the I/O counters start again near 0.
	dir := f.dockerDir()
	writeFile(t, filepath.Join(dir, "cpu.stat"), "usage_usec 1000\n")
	writeFile(t, filepath.Join(dir, "io.stat"), "8:0 rbytes=10 wbytes=20\n")
	got = f.tick(time.Second)
	wantSamples(t, "reset", seriesOf(got, dockerShort),
		`container_memory_usage_bytes{container="3f4e5d6c7b8a",id="3f4e5d6c7b8a",runtime="docker"} 104857600`,
		`container_restarts_total{container="3f4e5d6c7b8a",id="3f4e5d6c7b8a",runtime="docker"} 1`,
	)
	wantSamples(t, "reset, other container", seriesOf(got, podmanShort),
		`container_memory_usage_bytes{container="0a1b2c3d4e5f",id="0a1b2c3d4e5f",runtime="podman"} 10485760`,
		`container_cpu_usage_percent{container="0a1b2c3d4e5f",id="0a1b2c3d4e5f",runtime="podman"} 0`,
		`container_io_read_bytes_per_second{container="0a1b2c3d4e5f",id="0a1b2c3d4e5f",runtime="podman"} 0`,
		`container_io_write_bytes_per_second{container="0a1b2c3d4e5f",id="0a1b2c3d4e5f",runtime="podman"} 0`,
		`container_network_receive_bytes_per_second{container="0a1b2c3d4e5f",id="0a1b2c3d4e5f",runtime="podman"} 0`,
		`container_network_transmit_bytes_per_second{container="0a1b2c3d4e5f",id="0a1b2c3d4e5f",runtime="podman"} 0`,
		`container_restarts_total{container="0a1b2c3d4e5f",id="0a1b2c3d4e5f",runtime="podman"} 0`,
	)

	// Rates resume from the new cgroup's counters.
	writeFile(t, filepath.Join(dir, "cpu.stat"), "usage_usec 501000\n")
	writeFile(t, filepath.Join(dir, "io.stat"), "8:0 rbytes=1010 wbytes=20\n")
	got = f.tick(time.Second)
	wantSamples(t, "after reset", seriesOf(got, dockerShort),
		`container_memory_usage_bytes{container="3f4e5d6c7b8a",id="3f4e5d6c7b8a",runtime="docker"} 104857600`,
		`container_cpu_usage_percent{container="3f4e5d6c7b8a",id="3f4e5d6c7b8a",runtime="docker"} 50`,
		`container_io_read_bytes_per_second{container="3f4e5d6c7b8a",id="3f4e5d6c7b8a",runtime="docker"} 1000`,
		`container_io_write_bytes_per_second{container="3f4e5d6c7b8a",id="3f4e5d6c7b8a",runtime="docker"} 0`,
		`container_network_receive_bytes_per_second{container="3f4e5d6c7b8a",id="3f4e5d6c7b8a",runtime="docker"} 0`,
		`container_network_transmit_bytes_per_second{container="3f4e5d6c7b8a",id="3f4e5d6c7b8a",runtime="docker"} 0`,
		`container_restarts_total{container="3f4e5d6c7b8a",id="3f4e5d6c7b8a",runtime="docker"} 1`,
	)
}

func TestContainerNoRestartOnNormalTicks(t *testing.T) {
	f := newRestartFixture(t)
	dir := f.dockerDir()
	usage := 2000000
	for i := range 30 { // six listings
		if i%4 != 3 { // and some ticks where usage_usec stands still
			usage += 100000
		}
		writeFile(t, filepath.Join(dir, "cpu.stat"), fmt.Sprintf("usage_usec %d\n", usage))
		got := f.tick(time.Second)
		wantRestarts(t, fmt.Sprintf("tick %d", i), got, map[string]string{dockerShort: "0", podmanShort: "0"})
		if i > 0 && !hasSeries(got, "container_cpu_usage_percent", dockerShort) {
			t.Fatalf("tick %d: no CPU rate: %q", i, got)
		}
	}

	// One failed read of a cgroup that did not go away (same directory at
	// the next listing) is not a restart.
	writeFile(t, filepath.Join(dir, "cpu.stat"), "garbage\n")
	wantRestarts(t, "failed read", f.tick(time.Second), map[string]string{dockerShort: "", podmanShort: "0"})
	writeFile(t, filepath.Join(dir, "cpu.stat"), fmt.Sprintf("usage_usec %d\n", usage+100000))
	got := f.tick(time.Second)
	wantRestarts(t, "after the failed read", got, map[string]string{dockerShort: "0", podmanShort: "0"})
	if hasSeries(got, "container_cpu_usage_percent", dockerShort) {
		t.Fatalf("CPU rate across a failed read: %q", got)
	}
	for range 6 {
		wantRestarts(t, "later", f.tick(time.Second), map[string]string{dockerShort: "0", podmanShort: "0"})
	}
}

func TestContainerRestartForgottenAfterHour(t *testing.T) {
	f := newRestartFixture(t)
	dir := f.dockerDir()
	f.tick(0)
	restarts := 0
	leave := func(what string) string {
		t.Helper()
		held := f.hold(dir)
		wantRestarts(t, what+": read fails", f.tick(time.Second), map[string]string{dockerShort: "", podmanShort: "0"})
		wantRestarts(t, what+": gone", f.tick(time.Second), map[string]string{dockerShort: "", podmanShort: "0"})
		return held
	}
	back := func(what, held, want string) {
		t.Helper()
		if err := os.Rename(held, dir); err != nil {
			t.Fatal(err)
		}
		wantRestarts(t, what, f.tick(5*time.Second), map[string]string{dockerShort: want, podmanShort: "0"})
	}

	// Each return within the hour counts; the count lives on while absent.
	for _, away := range []time.Duration{0, 30 * time.Minute, 59 * time.Minute} {
		held := leave("away " + away.String())
		f.clock.advance(away)
		wantRestarts(t, "absent", f.tick(5*time.Second), map[string]string{dockerShort: "", podmanShort: "0"})
		restarts++
		back("back after "+away.String(), held, fmt.Sprint(restarts))
	}

	// Gone an hour: forgotten, so its return is a new container.
	held := leave("away for good")
	f.clock.advance(time.Hour)
	wantRestarts(t, "an hour later", f.tick(5*time.Second), map[string]string{dockerShort: "", podmanShort: "0"})
	back("back after an hour", held, "0")
}

func TestContainerRestartReplacedDir(t *testing.T) {
	f := newRestartFixture(t)
	dir := f.dockerDir()
	f.tick(0)
	f.tick(time.Second)

	// Replaced between two reads without a failed read, by a cgroup whose
	// usage_usec is already past the old one's: the next listing sees the
	// new directory, and no rate spans the two cgroups.
	held := f.hold(dir)
	f.recreate(held, dir)
	writeFile(t, filepath.Join(dir, "cpu.stat"), "usage_usec 3000000\n")
	got := f.tick(5 * time.Second)
	wantSamples(t, "replaced", seriesOf(got, dockerShort),
		`container_memory_usage_bytes{container="3f4e5d6c7b8a",id="3f4e5d6c7b8a",runtime="docker"} 104857600`,
		`container_restarts_total{container="3f4e5d6c7b8a",id="3f4e5d6c7b8a",runtime="docker"} 1`,
	)
	writeFile(t, filepath.Join(dir, "cpu.stat"), "usage_usec 3100000\n")
	got = f.tick(time.Second)
	if !slices.Contains(got, `container_cpu_usage_percent{container="3f4e5d6c7b8a",id="3f4e5d6c7b8a",runtime="docker"} 10`) {
		t.Fatalf("rates did not resume on the new cgroup: %q", seriesOf(got, dockerShort))
	}

	// A failed read, and at the next listing (the next tick) a new
	// directory under the same id.
	held = f.hold(dir)
	wantRestarts(t, "read fails", f.tick(time.Second), map[string]string{dockerShort: "", podmanShort: "0"})
	f.recreate(held, dir)
	writeFile(t, filepath.Join(dir, "cpu.stat"), "usage_usec 4000000\n")
	got = f.tick(time.Second)
	wantRestarts(t, "new directory", got, map[string]string{dockerShort: "2", podmanShort: "0"})
	if hasSeries(got, "container_cpu_usage_percent", dockerShort) {
		t.Fatalf("CPU rate across a new cgroup: %q", got)
	}

	// The same id under another parent (the cgroupfs driver) is a new
	// cgroup too, although the directory kept its inode.
	moved := filepath.Join(f.root, "sys", "fs", "cgroup", "docker", dockerID)
	if err := os.MkdirAll(filepath.Dir(moved), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	got = f.tick(5 * time.Second)
	wantSamples(t, "moved", seriesOf(got, dockerShort),
		`container_memory_usage_bytes{container="3f4e5d6c7b8a",id="3f4e5d6c7b8a",runtime="docker"} 104857600`,
		`container_restarts_total{container="3f4e5d6c7b8a",id="3f4e5d6c7b8a",runtime="docker"} 3`,
	)
	for range 7 {
		wantRestarts(t, "steady", f.tick(time.Second), map[string]string{dockerShort: "3", podmanShort: "0"})
	}
}

// TestContainerListingMissed checks that a container the listing misses
// (its parent cannot be read) while its cgroup is still there is not
// counted as a restart. Root reads any directory, so it skips as root.
func TestContainerListingMissed(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("directory permissions do not bind root")
	}
	f := newRestartFixture(t)
	parent := filepath.Dir(f.dockerDir())
	f.tick(0)
	if err := os.Chmod(parent, 0o311); err != nil { // search, no read
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(parent, 0o755) })
	for range 6 {
		wantRestarts(t, "unlistable parent", f.tick(time.Second), map[string]string{dockerShort: "0", podmanShort: "0"})
	}
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	wantRestarts(t, "listable again", f.tick(5*time.Second), map[string]string{dockerShort: "0", podmanShort: "0"})
}

func TestContainerRestartMemoryBound(t *testing.T) {
	root := t.TempDir()
	cg := filepath.Join(root, "sys", "fs", "cgroup")
	slice := filepath.Join(cg, "system.slice")
	if err := os.MkdirAll(slice, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(cg, "cgroup.controllers"), "cpu io memory\n")
	n := containerRemember + 1
	ids := make([]string, n)
	mk := func(i int) {
		t.Helper()
		dir := filepath.Join(slice, "docker-"+ids[i]+".scope")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "cpu.stat"), "usage_usec 1000\n")
	}
	rm := func(i int) {
		t.Helper()
		if err := os.RemoveAll(filepath.Join(slice, "docker-"+ids[i]+".scope")); err != nil {
			t.Fatal(err)
		}
	}
	for i := range ids {
		ids[i] = fmt.Sprintf("%012x", i) + strings.Repeat("c", 52)
		mk(i)
	}
	clock := newFakeClock()
	c := NewContainers(Options{SysPath: filepath.Join(root, "sys"), ProcPath: filepath.Join(root, "proc"), RootFS: root})
	c.DockerSocket, c.PodmanSocket = "", ""
	c.now, c.clock.now, c.names.now = clock.now, clock.now, clock.now
	t.Cleanup(c.names.wait)
	tick := func() []string {
		t.Helper()
		clock.advance(5 * time.Second)
		return collectOnce(t, c)
	}
	if got := restartsOf(tick()); len(got) != n {
		t.Fatalf("%d containers reported, want %d", len(got), n)
	}

	// The first container leaves, then all the others: one more than is
	// remembered, so the first to leave is forgotten.
	rm(0)
	tick()
	for i := 1; i < n; i++ {
		rm(i)
	}
	if got := tick(); len(got) != 0 {
		t.Fatalf("series for vanished containers: %d, e.g. %q", len(got), got[0])
	}
	if len(c.gone) != containerRemember {
		t.Fatalf("%d vanished containers remembered, want %d", len(c.gone), containerRemember)
	}
	mk(0)
	mk(1)
	mk(n - 1)
	wantRestarts(t, "back", tick(), map[string]string{ids[0][:12]: "0", ids[1][:12]: "1", ids[n-1][:12]: "1", ids[2][:12]: ""})
}

// TestContainerRenamed: a name the runtime API changes (docker rename) is
// picked up at the next names fetch; the series continue under the new
// name, restart count included.
func TestContainerRenamed(t *testing.T) {
	var name atomic.Value
	name.Store("web")
	sock := serveDockerAPIFunc(t, func() string {
		return `[{"Id":"` + dockerID + `","Names":["/` + name.Load().(string) + `"]}]`
	})
	f := newRestartFixture(t)
	f.c.DockerSocket = sock
	f.tick(0)
	f.c.names.wait()
	got := f.tick(time.Second)
	named := func(got []string, n string) bool {
		return slices.ContainsFunc(got, func(s string) bool {
			return strings.HasPrefix(s, `container_restarts_total{container="`+n+`",id="`+dockerShort+`"`)
		})
	}
	if !named(got, "web") {
		t.Fatalf("not named web: %q", got)
	}
	name.Store("web-2")
	f.tick(containerNamesEvery) // starts the periodic fetch
	f.c.names.wait()
	got = f.tick(time.Second)
	if !named(got, "web-2") || named(got, "web") {
		t.Fatalf("rename not picked up: %q", got)
	}
}
