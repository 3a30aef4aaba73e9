package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/sysmonstm/sysmonstm/internal/bus/bustest"
	"github.com/sysmonstm/sysmonstm/internal/db/dbtest"
	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// vmSeqs returns the values of sysmonstm_agent_seq{machine=id} in
// VictoriaMetrics, in time order (duplicates as stored, after its
// de-duplication).
func vmSeqs(t *testing.T, addr, id string) []int {
	t.Helper()
	type point struct{ ts, seq int64 }
	var pts []point
	for _, line := range testutil.VMExport(t, addr, fmt.Sprintf(`sysmonstm_agent_seq{machine=%q}`, id)) {
		for i, ts := range line.Timestamps {
			pts = append(pts, point{ts, int64(line.Values[i])})
		}
	}
	slices.SortFunc(pts, func(a, b point) int { return int(a.ts - b.ts) })
	out := make([]int, len(pts))
	for i, p := range pts {
		out[i] = int(p.seq)
	}
	return out
}

var busWelcome = regexp.MustCompile(`msg="agent connected" component=ingest machine=mover .*last_seq=(\d+)`)

// TestNATSHubs: two hub processes on one NATS JetStream, one PostgreSQL
// database and one VictoriaMetrics (with -dedup.minScrapeInterval=1ms, as
// docs/configuration.md says). An agent on each hub: both hubs list both
// machines online with fresh values (the shared live view). A third agent,
// given both hubs, loses its hub to SIGKILL: the survivor's welcome tells
// it the last seq JetStream holds, and VictoriaMetrics ends up with every
// one of its batches exactly once, 1…N without a gap. Then NATS stops and
// starts again: the hub is not ready meanwhile, and recovers by itself.
func TestNATSHubs(t *testing.T) {
	t.Parallel()
	vm := freeAddr(t)
	startVM(t, needVictoriaMetrics(t), vm, t.TempDir(), "-dedup.minScrapeInterval=1ms")
	setEnv(t, "SYSMONSTM_POSTGRES", dbtest.NewPostgres(t))
	natsOpts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true}
	ns := bustest.Run(t, natsOpts)
	natsOpts.Port = ns.Addr().(*net.TCPAddr).Port // a restart comes back here
	setEnv(t, "SYSMONSTM_NATS", ns.ClientURL())
	dirA, dirB := t.TempDir(), t.TempDir()
	prepareHubToken(t, []string{"--data-dir", dirA})
	rw := []string{"--remote-write", "http://" + vm + "/api/v1/write"}
	hubs := []*hubProc{startHub(t, dirA, "", "", rw...), startHub(t, dirB, "", "", rw...)}
	startAgent(t, hubs[0], "on-a")
	startAgent(t, hubs[1], "on-b")

	fresh := func(h *hubProc, id string) error {
		var m machine
		if code := getJSON(t, "http://"+h.http+"/api/machines/"+url.PathEscape(id), &m); code != 200 {
			return fmt.Errorf("%s: status %d", id, code)
		}
		if !m.Online {
			return fmt.Errorf("%s offline", id)
		}
		if _, ok := m.value("uptime_seconds"); !ok {
			return fmt.Errorf("%s: no uptime value", id)
		}
		seen, err := time.Parse(time.RFC3339Nano, m.LastSeen)
		if err != nil || time.Since(seen) > 3*time.Second {
			return fmt.Errorf("%s: last seen %q", id, m.LastSeen)
		}
		return nil
	}
	for i, h := range hubs {
		testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("hub %d shows both machines", i), func() error {
			return errors.Join(fresh(h, "on-a"), fresh(h, "on-b"))
		})
	}

	// The mover: on whichever hub it picks, which is then killed.
	mover := startAgent(t, hubs[0], "mover", "--hub", hubs[0].grpc+","+hubs[1].grpc)
	holder := -1
	testutil.WaitFor(t, 20*time.Second, "the mover connected", func() error {
		for i, h := range hubs {
			if busWelcome.MatchString(h.out.String()) {
				holder = i
				return nil
			}
		}
		return errors.New("not yet")
	})
	time.Sleep(3 * time.Second) // a dozen batches on the first hub
	hubs[holder].kill(syscall.SIGKILL)
	survivor := hubs[1-holder]
	m := waitLog(t, survivor.proc, 20*time.Second, busWelcome)
	lastSeq, _ := strconv.Atoi(m[1])
	if lastSeq < 5 {
		t.Fatalf("the survivor's welcome said last_seq %d; the killed hub had acknowledged more", lastSeq)
	}
	testutil.WaitFor(t, 20*time.Second, "the survivor shows the mover", func() error { return fresh(survivor, "mover") })
	time.Sleep(2 * time.Second)
	mover.kill(syscall.SIGTERM)

	testutil.WaitFor(t, 60*time.Second, "VictoriaMetrics holds every batch of the mover once", func() error {
		seqs := vmSeqs(t, vm, "mover")
		if len(seqs) <= lastSeq {
			return fmt.Errorf("%d batches stored, the welcome said %d", len(seqs), lastSeq)
		}
		for i, s := range seqs {
			if s != i+1 {
				return fmt.Errorf("batch %d has seq %d (gap or duplicate): %v", i, s, seqs)
			}
		}
		return nil
	})
	t.Logf("the survivor's welcome: last_seq %d", lastSeq)

	// NATS goes away: the survivor is not ready and says why, its agent's
	// stream is refused; NATS comes back: ready again, the agent streams.
	ns.Shutdown()
	ns.WaitForShutdown()
	testutil.WaitFor(t, 20*time.Second, "the survivor not ready, naming NATS", func() error {
		code, body := getBody(t, "http://"+survivor.http+"/ready")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "NATS") {
			return fmt.Errorf("/ready %d %q", code, body)
		}
		return nil
	})
	waitLog(t, survivor.proc, 20*time.Second, regexp.MustCompile(`agent stream refused: the bus cannot say which batches it has`))
	bustest.Run(t, natsOpts)
	testutil.WaitFor(t, 30*time.Second, "the survivor ready again", func() error {
		if code, body := getBody(t, "http://"+survivor.http+"/ready"); code != 200 {
			return fmt.Errorf("/ready %d %q", code, body)
		}
		return nil
	})
	mine := []string{"on-a", "on-b"}[1-holder]
	testutil.WaitFor(t, 30*time.Second, "the survivor's agent streams again", func() error { return fresh(survivor, mine) })
}

// getBody returns a GET's status and body.
func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
