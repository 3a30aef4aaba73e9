package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/creack/pty"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// ptyProc is `sysmonstm top` running under a pseudo-terminal.
type ptyProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	f    *os.File
	mu   sync.Mutex
	out  bytes.Buffer
	seen []time.Time // arrival time of each chunk …
	ends []int       // … and the output length after it
	done chan struct{}
}

func startTop(t *testing.T, cols, rows uint16, args ...string) *ptyProc {
	t.Helper()
	p := &ptyProc{t: t, done: make(chan struct{})}
	bin := binary
	if b := os.Getenv("SYSMONSTM_TOP_BINARY"); b != "" {
		bin = b // e.g. bin/sysmonstm-agent (make build-agent), which carries top too
	}
	p.cmd = exec.Command(bin, append([]string{"top"}, args...)...)
	p.cmd.Env = append(procEnv(t), "TERM=xterm-256color", "SYSMONSTM_LOG_FILE="+filepath.Join(t.TempDir(), "top.log"))
	f, err := pty.StartWithSize(p.cmd, &pty.Winsize{Cols: cols, Rows: rows})
	if err != nil {
		t.Fatalf("start top under a pty: %v", err)
	}
	p.f = f
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := f.Read(buf)
			if n > 0 {
				answerQueries(f, buf[:n])
				p.mu.Lock()
				p.out.Write(buf[:n])
				p.seen = append(p.seen, time.Now())
				p.ends = append(p.ends, p.out.Len())
				p.mu.Unlock()
			}
			if err != nil {
				close(p.done)
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		f.Close()
		if t.Failed() {
			t.Logf("--- top screen output (tail) ---\n%q", tail(p.output(0), 3000))
		}
	})
	return p
}

// answerQueries answers the terminal queries a real terminal emulator
// answers at once: the background colour (OSC 11, which Lip Gloss asks
// when the program starts) and the cursor position (DSR, which termenv
// sends after it to learn that the terminal answers at all). A bare pty
// answers nothing, and the program would wait termenv's 5 s OSC timeout
// before its first frame, which no operator's terminal makes it do.
func answerQueries(f *os.File, out []byte) {
	if bytes.Contains(out, []byte("\x1b]11;?")) {
		_, _ = f.Write([]byte("\x1b]11;rgb:0000/0000/0000\x1b\\"))
	}
	if bytes.Contains(out, []byte("\x1b[6n")) {
		_, _ = f.Write([]byte("\x1b[1;1R"))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// output returns what top wrote from byte offset from on.
func (p *ptyProc) output(from int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()[min(from, p.out.Len()):]
}

func (p *ptyProc) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Len()
}

// expect waits until everything in subs appeared in the output after from.
func (p *ptyProc) expect(from int, timeout time.Duration, subs ...string) {
	p.t.Helper()
	testutil.WaitFor(p.t, timeout, fmt.Sprintf("top to show %q", subs), func() error {
		return containsAll(p.output(from), subs...)
	})
}

func (p *ptyProc) send(keys string) {
	p.t.Helper()
	if _, err := p.f.Write([]byte(keys)); err != nil {
		p.t.Fatalf("type %q: %v", keys, err)
	}
}

// TestTopUnderPTY runs a real hub with two agents and `sysmonstm top --hub`
// under a pseudo-terminal: the machines appear, and /, typing, Enter, Esc,
// s, ?, a and q do what the help says.
func TestTopUnderPTY(t *testing.T) {
	t.Parallel()
	hub := startHub(t, t.TempDir(), "", "")
	startAgent(t, hub, "e2e-top-alpha")
	startAgent(t, hub, "e2e-top-bravo")
	testutil.WaitFor(t, 20*time.Second, "both agents online", func() error {
		var ms []machine
		getJSON(t, "http://"+hub.http+"/api/machines", &ms)
		if len(ms) < 2 {
			return fmt.Errorf("%d machines", len(ms))
		}
		return nil
	})

	top := startTop(t, 100, 30, "--hub", "http://"+hub.http)
	top.expect(0, 15*time.Second, "sysmonstm top", "e2e-top-alpha", "e2e-top-bravo", "2 machines, 2 up")

	m := top.mark()
	top.send("/bravo")
	top.expect(m, 5*time.Second, "/bravo")
	m = top.mark()
	top.send("\r") // keep the filter
	top.expect(m, 5*time.Second, `filter "bravo"`)
	m = top.mark()
	top.send("\r") // open the only row
	top.expect(m, 5*time.Second, "e2e-top-bravo", "FILESYSTEMS", "last seen")
	m = top.mark()
	top.send("\x1b") // Esc: back to the overview
	top.expect(m, 5*time.Second, "MACHINE", `filter "bravo"`)
	m = top.mark()
	top.send("\x1b") // Esc again clears the filter
	top.expect(m, 5*time.Second, "e2e-top-alpha")
	m = top.mark()
	top.send("s")
	top.expect(m, 5*time.Second, "CPU%↓")
	m = top.mark()
	top.send("a") // the alerts view (with or without an alert engine on the hub)
	top.expect(m, 5*time.Second, "k acknowledge")
	m = top.mark()
	top.send("\x1b")
	top.expect(m, 5*time.Second, "MACHINE")
	m = top.mark()
	top.send("?")
	top.expect(m, 5*time.Second, "Keys", "acknowledge")
	top.send("x")

	// The hub goes away: top stays up and says so.
	hub.kill(9)
	m = top.mark()
	top.expect(m, 15*time.Second, "disconnected, retrying")
	select {
	case <-top.done:
		t.Fatal("top exited when the hub went away")
	default:
	}

	top.send("q")
	select {
	case <-top.done:
	case <-time.After(10 * time.Second):
		t.Fatal("q did not quit")
	}
	if err := top.cmd.Wait(); err != nil {
		t.Fatalf("top exit: %v", err)
	}
	if strings.Contains(top.output(0), "level=") || strings.Contains(top.output(0), `"level"`) {
		t.Fatal("log lines reached the screen")
	}
}

// TestTopBenchmark measures `sysmonstm top` against a hub with 1,000
// loadgen machines at 1 s: start to first full frame, key-to-frame latency,
// RSS, idle CPU and bytes read on the overview (which streams the hub's
// summary mode, /ws?mode=summary), and the size of the hub's summary and
// full snapshots. It takes about a minute and runs only with
// SYSMONSTM_TOP_BENCH=1; figures go to the test log (docs/benchmarks.md).
func TestTopBenchmark(t *testing.T) {
	if os.Getenv("SYSMONSTM_TOP_BENCH") == "" {
		t.Skip("set SYSMONSTM_TOP_BENCH=1 to run the top benchmark (SYSMONSTM_TOP_BINARY=path runs another build's top)")
	}
	machines := 1000
	if v, err := strconv.Atoi(os.Getenv("SYSMONSTM_TOP_BENCH_MACHINES")); err == nil {
		machines = v
	}
	hub := startHub(t, t.TempDir(), "", "")
	start(t, "loadgen", "loadgen", "--hub", hub.grpc, "--machines", strconv.Itoa(machines), "--duration", "0", "--interval", "1s")
	testutil.WaitFor(t, 60*time.Second, "all loadgen machines online", func() error {
		var ms []machine
		getJSON(t, "http://"+hub.http+"/api/machines", &ms)
		if len(ms) < machines {
			return fmt.Errorf("%d machines", len(ms))
		}
		return nil
	})
	time.Sleep(3 * time.Second)
	for _, path := range []string{"/ws?mode=summary", "/ws"} {
		size, took := snapshotSize(t, hub, path)
		t.Logf("snapshot of %s: %.2f MB in %s", path, float64(size)/1e6, took.Round(time.Millisecond))
	}

	t0 := time.Now()
	top := startTop(t, 120, 40, "--hub", "http://"+hub.http)
	want := fmt.Sprintf("%d machines", machines)
	var firstFrame time.Duration
	testutil.WaitFor(t, 20*time.Second, "first full frame", func() error {
		top.mu.Lock()
		defer top.mu.Unlock()
		out := top.out.String()
		i := strings.Index(out, want)
		if i < 0 || !strings.Contains(out[i:], "loadgen-0") {
			return fmt.Errorf("not yet")
		}
		j := strings.Index(out, "loadgen-0")
		end := max(i, j)
		for k, e := range top.ends {
			if e > end {
				firstFrame = top.seen[k].Sub(t0)
				break
			}
		}
		return nil
	})
	t.Logf("start to first full frame (%s, rows drawn): %s", want, firstFrame.Round(time.Millisecond))

	// Key-to-frame: j/k move the cursor; the next output after the key is
	// the new frame.
	var lat []time.Duration
	for i := range 60 {
		m := top.mark()
		key := "j"
		if i%2 == 1 {
			key = "k"
		}
		sent := time.Now()
		top.send(key)
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			top.mu.Lock()
			var at time.Time
			for k := len(top.ends) - 1; k >= 0 && top.ends[k] > m; k-- {
				at = top.seen[k]
			}
			top.mu.Unlock()
			if !at.IsZero() {
				lat = append(lat, at.Sub(sent))
				break
			}
			time.Sleep(200 * time.Microsecond)
		}
		time.Sleep(150 * time.Millisecond)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		t.Logf("key-to-frame latency over %d keys: p50 %s, p90 %s, max %s (includes data frames racing with keys)",
			len(lat), lat[len(lat)/2].Round(100*time.Microsecond), lat[len(lat)*9/10].Round(100*time.Microsecond), lat[len(lat)-1].Round(100*time.Microsecond))
	}

	// Idle on the overview: CPU and RSS over 30 s.
	pid := top.cmd.Process.Pid
	time.Sleep(5 * time.Second)
	c0, r0, w0 := cpuTicks(t, pid), readBytes(t, pid), time.Now()
	var rssMax int
	for range 30 {
		time.Sleep(time.Second)
		rssMax = max(rssMax, rssKB(t, pid))
	}
	c1, r1, w1 := cpuTicks(t, pid), readBytes(t, pid), time.Now()
	secs := w1.Sub(w0).Seconds()
	t.Logf("idle on the overview for %s: CPU %.2f%% of one core, RSS max %.1f MB (now %.1f MB anonymous, %.1f MB file pages of the binary), read %.0f KB/s",
		w1.Sub(w0).Round(time.Second), float64(c1-c0)/100/secs*100, float64(rssMax)/1024,
		float64(statusKB(t, pid, "RssAnon:"))/1024, float64(statusKB(t, pid, "RssFile:"))/1024, float64(r1-r0)/1e3/secs)

	// The same process with no hub to talk to: the binary's own floor.
	bare := startTop(t, 120, 40, "--hub", "http://127.0.0.1:1")
	bare.expect(0, 10*time.Second, "disconnected, retrying")
	time.Sleep(3 * time.Second)
	t.Logf("for comparison, top with no hub: RSS %.1f MB (%.1f MB anonymous, %.1f MB file pages)",
		float64(rssKB(t, bare.cmd.Process.Pid))/1024, float64(statusKB(t, bare.cmd.Process.Pid, "RssAnon:"))/1024, float64(statusKB(t, bare.cmd.Process.Pid, "RssFile:"))/1024)
}

// statusKB reads one "Name: N kB" line of /proc/<pid>/status.
func statusKB(t *testing.T, pid int, field string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	return 0
}

// snapshotSize dials the hub's WebSocket at path and returns the size of
// the first message (the snapshot) and the time from dialling to having it.
func snapshotSize(t *testing.T, hub *hubProc, path string) (int, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	c, _, err := websocket.Dial(ctx, "ws://"+hub.http+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(256 << 20)
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read the snapshot of %s: %v", path, err)
	}
	return len(b), time.Since(start)
}

// readBytes is what the process read so far (rchar: sockets, the pty and
// files), bytes.
func readBytes(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "rchar:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

func cpuTicks(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	u, _ := strconv.Atoi(f[11])
	s, _ := strconv.Atoi(f[12])
	return u + s
}

func rssKB(t *testing.T, pid int) int { return statusKB(t, pid, "VmRSS:") }
