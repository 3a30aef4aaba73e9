package collect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// containerRescan is how often the container collector lists cgroups.
const containerRescan = 5 * time.Second

// containerNamesEvery is how often container names are re-read from the
// runtime API even when no new container appeared (renames).
const containerNamesEvery = 5 * time.Minute

// containerForget is how long a vanished container is remembered, so that
// the same id coming back counts as a restart rather than a new container.
const containerForget = time.Hour

// containerRemember bounds the vanished containers remembered; past it the
// ones gone longest are forgotten first.
const containerRemember = 1000

// containerCgroup is one running container found in cgroupfs.
type containerCgroup struct {
	id, runtime, dir string
	labels           metric.Labels // container, id, runtime (sorted)
	named            bool          // labels carry the runtime's name, not the short id
	waitGen          uint64        // series wait for this names fetch (or a name), so they do not start under the short id
	found            time.Time
	ident            fs.FileInfo // dir as last listed; cgroupfs gives a new cgroup a new inode
	restarts         uint64      // restarts of this id seen since the agent started
	r                *cgroupReader
	prev             cgroupUsage
	valid            bool

	procs   *procFile // cgroup.procs of dir or of its first child group
	pid     uint64
	netDev  *procFile // <proc>/<pid>/net/dev; nil for host-network containers
	prevNet [2]uint64
	netOK   bool
}

// goneContainer is what is remembered of a container whose cgroup vanished
// from the listing.
type goneContainer struct {
	labels   metric.Labels
	named    bool
	restarts uint64
	since    time.Time // the scan that first missed it
}

// restart records that the container's cgroup was replaced: the count goes
// up, and neither CPU/I/O nor network rates span the old and the new
// cgroup's counters.
func (ct *containerCgroup) restart() {
	ct.restarts++
	ct.valid = false
	ct.pid, ct.netDev, ct.netOK = 0, nil, false
}

// replace points the container at a new cgroup directory for its id (dir
// may be the old path).
func (ct *containerCgroup) replace(dir string) {
	ct.restart()
	ct.dir = dir
	ct.r = newCgroupV2Reader(dir, true)
	ct.procs = newProcFile(procsFile(dir))
}

// parseContainerCgroup recognises a container's cgroup directory name:
// docker-<id>.scope (systemd driver), libpod-<id>.scope (Podman), or a bare
// <id> below a "docker" parent (cgroupfs driver). id is 64 hex digits.
func parseContainerCgroup(parent, name string) (id, runtime string, ok bool) {
	switch {
	case strings.HasPrefix(name, "docker-") && strings.HasSuffix(name, ".scope"):
		id, runtime = name[len("docker-"):len(name)-len(".scope")], "docker"
	case strings.HasPrefix(name, "libpod-") && strings.HasSuffix(name, ".scope"):
		id, runtime = name[len("libpod-"):len(name)-len(".scope")], "podman"
	case parent == "docker":
		id, runtime = name, "docker"
	default:
		return "", "", false
	}
	if len(id) != 64 {
		return "", "", false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", "", false
		}
	}
	return id, runtime, true
}

// parseContainerList reads the Docker (or Podman compat) API's
// GET /containers/json into id → name.
func parseContainerList(b []byte) (map[string]string, error) {
	var list []struct {
		ID    string   `json:"Id"`
		Names []string `json:"Names"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("container list: %w", err)
	}
	m := make(map[string]string, len(list))
	for _, c := range list {
		if c.ID == "" || len(c.Names) == 0 {
			continue
		}
		m[c.ID] = strings.TrimPrefix(c.Names[0], "/")
	}
	return m, nil
}

// Containers reports per-container CPU, memory, I/O, network and restarts
// from cgroup v2, named through the Docker or Podman API socket when one
// answers (see docs/metrics.md). Hosts with cgroup v1 yield nothing.
//
// A restart is a container id whose cgroup ended and came back: the id
// vanished from a listing and returned within containerForget, its
// directory was replaced by another (other inode or path) between two
// listings, or its cpu.stat usage_usec went backwards between two reads.
type Containers struct {
	DockerSocket string // default RootFS/var/run/docker.sock
	PodmanSocket string // default RootFS/run/podman/podman.sock

	cgRoot   string
	procPath string
	hostNet  string // readlink of <proc>/1/ns/net
	now      func() time.Time
	clock    rateClock
	scanned  time.Time
	list     []*containerCgroup       // sorted by id
	gone     map[string]goneContainer // vanished containers by id, at most containerRemember
	names    *slowSource[map[string]string]
}

// NewContainers returns the container collector.
func NewContainers(opts Options) *Containers {
	opts = opts.withDefaults()
	c := &Containers{
		DockerSocket: filepath.Join(opts.RootFS, "var", "run", "docker.sock"),
		PodmanSocket: filepath.Join(opts.RootFS, "run", "podman", "podman.sock"),
		cgRoot:       filepath.Join(opts.SysPath, "fs", "cgroup"),
		procPath:     opts.ProcPath,
		now:          time.Now,
	}
	c.hostNet, _ = os.Readlink(filepath.Join(opts.ProcPath, "1", "ns", "net"))
	c.names = &slowSource[map[string]string]{interval: containerNamesEvery, timeout: 3 * time.Second,
		fetch: c.fetchNames, log: opts.Logger, what: "container runtime API"}
	return c
}

// Name implements Collector.
func (*Containers) Name() string { return "containers" }

// containersAvailable reports a cgroup v2 host.
func containersAvailable(opts Options) bool {
	return cgroupV2(filepath.Join(opts.SysPath, "fs", "cgroup"))
}

// fetchNames asks every runtime socket that exists; absent sockets are not
// an error.
func (c *Containers) fetchNames(ctx context.Context) (map[string]string, error) {
	names := map[string]string{}
	var errs []error
	for _, sock := range []string{c.DockerSocket, c.PodmanSocket} {
		if sock == "" {
			continue
		}
		if _, err := os.Stat(sock); err != nil {
			continue
		}
		m, err := listContainers(ctx, sock)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for k, v := range m {
			names[k] = v
		}
	}
	if len(names) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return names, nil
}

// listContainers does GET /containers/json over the unix socket sock.
func listContainers(ctx context.Context, sock string) (map[string]string, error) {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://localhost/containers/json", nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("list containers via %s: %w", sock, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("list containers via %s: %w", sock, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("list containers via %s: %s", sock, resp.Status)
	}
	return parseContainerList(body)
}

// Collect implements Collector.
func (c *Containers) Collect(_ context.Context, b *Batch) error {
	if t := c.now(); c.scanned.IsZero() || t.Sub(c.scanned) >= containerRescan {
		c.scan()
		c.scanned = t
	}
	if len(c.list) == 0 {
		return nil
	}
	names, ok, gen := c.names.getGen()
	secs := c.clock.advance()
	now := c.now()
	for _, ct := range c.list {
		if ok {
			// Named, or renamed since (docker rename): new series.
			if n := names[ct.id]; n != "" && (!ct.named || n != ct.labels.Get("container")) {
				ct.labels, ct.named = sortedLabels("container", n, "id", ct.id[:12], "runtime", ct.runtime), true
			}
		}
		if !ct.named && gen < ct.waitGen && now.Sub(ct.found) < containerNameWait {
			continue // the runtime API has not answered yet
		}
		cur, ok := ct.r.read()
		if !ok {
			ct.valid = false
			c.scanned = time.Time{} // gone or replaced: rescan next tick
			continue
		}
		if ct.valid && cur.cpuUsec < ct.prev.cpuUsec {
			ct.restart() // a new cgroup under the same path since the last read
		}
		containerCgroupNames.emit(b, ct.labels, ct.prev, ct.valid, cur, secs)
		b.addShared("container_restarts_total", float64(ct.restarts), ct.labels)
		ct.prev, ct.valid = cur, true
		c.network(b, ct, secs)
	}
	return nil
}

// network reads the net/dev of the container's first process, skipping
// containers in the host's network namespace (their traffic is the host's).
func (c *Containers) network(b *Batch, ct *containerCgroup, secs float64) {
	data, err := ct.procs.read()
	if err != nil {
		return
	}
	line, _ := nextLine(data)
	pid, ok := parseUint(bytes.TrimSpace(line))
	if !ok {
		ct.netDev, ct.netOK, ct.pid = nil, false, 0
		return
	}
	if pid != ct.pid {
		ct.pid, ct.netOK, ct.netDev = pid, false, nil
		pidDir := filepath.Join(c.procPath, fmt.Sprint(pid))
		ns, err := os.Readlink(filepath.Join(pidDir, "ns", "net"))
		if err != nil || ns != c.hostNet {
			ct.netDev = newProcFile(filepath.Join(pidDir, "net", "dev"))
		}
	}
	if ct.netDev == nil {
		return
	}
	dev, err := ct.netDev.read()
	if err != nil {
		ct.netOK = false
		return
	}
	var cur [2]uint64
	if parseNetDev(dev, func(l netLine) {
		if string(l.name) != "lo" {
			cur[0] += l.rxBytes
			cur[1] += l.txBytes
		}
	}) != nil {
		return
	}
	if ct.netOK {
		rx, okR := perSecond(ct.prevNet[0], cur[0], secs)
		tx, okT := perSecond(ct.prevNet[1], cur[1], secs)
		if okR && okT {
			b.addShared("container_network_receive_bytes_per_second", rx, ct.labels)
			b.addShared("container_network_transmit_bytes_per_second", tx, ct.labels)
		}
	}
	ct.prevNet, ct.netOK = cur, true
}

// containerParents are the cgroup directories runtimes put containers in.
var containerParents = []string{
	"system.slice",  // docker-<id>.scope (systemd cgroup driver), libpod as root
	"machine.slice", // libpod-<id>.scope
	"docker",        // <id> (cgroupfs driver)
	"user.slice/user-*.slice/user@*.service/user.slice", // rootless Podman
}

// scan lists the container cgroups, keeping the state of those already
// known, counting a restart for a known id whose directory was replaced or
// that comes back after it vanished, and remembering the ones that
// vanished.
func (c *Containers) scan() {
	now := c.now()
	old := make(map[string]*containerCgroup, len(c.list))
	for _, ct := range c.list {
		old[ct.id] = ct
	}
	listed := make(map[string]bool, len(c.list))
	c.list = c.list[:0]
	fresh := false
	var waitGen uint64 // 0: nothing to wait for
	if c.socketExists() {
		waitGen = c.names.nextGeneration()
	}
	for _, pat := range containerParents {
		parents, _ := filepath.Glob(filepath.Join(c.cgRoot, pat))
		for _, parent := range parents {
			ents, err := os.ReadDir(parent)
			if err != nil {
				continue
			}
			for _, e := range ents {
				if !e.IsDir() {
					continue
				}
				id, rt, ok := parseContainerCgroup(filepath.Base(parent), e.Name())
				if !ok || listed[id] {
					continue
				}
				info, err := e.Info()
				if err != nil {
					continue // removed since the listing
				}
				listed[id] = true
				dir := filepath.Join(parent, e.Name())
				if ct, ok := old[id]; ok {
					delete(old, id)
					if ct.dir != dir || !os.SameFile(ct.ident, info) {
						ct.replace(dir)
					}
					ct.ident = info
					c.list = append(c.list, ct)
					continue
				}
				ct := &containerCgroup{id: id, runtime: rt, dir: dir, found: now, waitGen: waitGen, ident: info,
					labels: sortedLabels("container", id[:12], "id", id[:12], "runtime", rt),
					r:      newCgroupV2Reader(dir, true),
					procs:  newProcFile(procsFile(dir))}
				if g, ok := c.gone[id]; ok {
					// Back after it vanished: a restart, under the labels it had.
					ct.labels, ct.named, ct.restarts, ct.waitGen = g.labels, g.named, g.restarts+1, 0
					delete(c.gone, id)
				} else {
					fresh = true
				}
				c.list = append(c.list, ct)
			}
		}
	}
	for id, ct := range old {
		if _, err := os.Lstat(ct.dir); !errors.Is(err, fs.ErrNotExist) {
			c.list = append(c.list, ct) // still there: the listing missed it
			continue
		}
		if c.gone == nil {
			c.gone = make(map[string]goneContainer)
		}
		c.gone[id] = goneContainer{labels: ct.labels, named: ct.named, restarts: ct.restarts, since: now}
	}
	c.forgetGone(now)
	slices.SortFunc(c.list, func(a, b *containerCgroup) int { return strings.Compare(a.id, b.id) })
	if fresh {
		c.names.refreshSoon()
	}
}

// forgetGone drops vanished containers gone for containerForget, then the
// ones gone longest while more than containerRemember are left.
func (c *Containers) forgetGone(now time.Time) {
	for id, g := range c.gone {
		if now.Sub(g.since) >= containerForget {
			delete(c.gone, id)
		}
	}
	if len(c.gone) <= containerRemember {
		return
	}
	ids := make([]string, 0, len(c.gone))
	for id := range c.gone {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int {
		if d := c.gone[a].since.Compare(c.gone[b].since); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	for _, id := range ids[:len(ids)-containerRemember] {
		delete(c.gone, id)
	}
}

func (c *Containers) socketExists() bool {
	for _, s := range []string{c.DockerSocket, c.PodmanSocket} {
		if _, err := os.Stat(s); s != "" && err == nil {
			return true
		}
	}
	return false
}

// containerNameWait bounds how long a new container's series wait for its
// name; after that they start under the short id.
const containerNameWait = 10 * time.Second

// procsFile returns dir/cgroup.procs, or that of dir's first child group
// when processes live below it (Podman's "container" sub-group).
func procsFile(dir string) string {
	p := filepath.Join(dir, "cgroup.procs")
	if b, err := os.ReadFile(p); err == nil && len(bytes.TrimSpace(b)) > 0 {
		return p
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return p
	}
	for _, e := range ents {
		if e.IsDir() {
			if _, err := os.Stat(filepath.Join(dir, e.Name(), "cgroup.procs")); !errors.Is(err, fs.ErrNotExist) {
				return filepath.Join(dir, e.Name(), "cgroup.procs")
			}
		}
	}
	return p
}
