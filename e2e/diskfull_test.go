package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// mountTmpfs mounts a tmpfs of size bytes for the test and returns its
// path. Without the privilege to mount the test is skipped, except under
// CI=true, where it fails: CI runs as root and must run it.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount tmpfs on %s: %v (CI runs as root and must run this test)", dir, err)
		}
		t.Skipf("mount tmpfs on %s: %v (needs root; runs in CI)", dir, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fillDisk creates path taking all but leave bytes of its filesystem.
func fillDisk(t *testing.T, path string, leave int64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
		t.Fatal(err)
	}
	size := int64(st.Bavail)*int64(st.Bsize) - leave
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		t.Fatalf("fill %s with %d bytes: %v", path, size, err)
	}
}

func readyBody(t *testing.T, hub *hubProc) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + hub.http + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, readAll(resp)
}

// TestDiskFullHubStopsAndRecovers streams a real agent into a hub whose data
// dir is on a 64 MiB tmpfs, fills the disk below the reserve, and checks that
// the hub turns non-ready without panicking, refuses HTTP ingest with 503,
// logs the full disk a bounded number of times, recovers by itself once the
// filler is removed, and that the stored history has no gap and no duplicate.
// Then it checks that a hub does not start on a full disk, with an error
// naming it and the data dir.
func TestDiskFullHubStopsAndRecovers(t *testing.T) {
	t.Parallel() // its tmpfs is its own; it mostly waits
	mnt := mountTmpfs(t, 64<<20)
	dataDir := filepath.Join(mnt, "data")
	filler := filepath.Join(mnt, "filler")
	hub := startHub(t, dataDir, "", "", "--min-free-disk-mib", "16")
	startAgent(t, hub, "tight")
	testutil.WaitFor(t, 20*time.Second, "batches stored", func() error {
		if code := getJSON(t, "http://"+hub.http+"/api/machines/tight", nil); code != 200 {
			return fmt.Errorf("machine: status %d", code)
		}
		if n := len(exportJSON(t, hub, "tight", "sysmonstm_agent_seq", "-5m")); n < 8 {
			return fmt.Errorf("%d batches", n)
		}
		return nil
	})

	fillDisk(t, filler, 8<<20)
	filled := time.Now()
	testutil.WaitFor(t, 10*time.Second, "/ready 503 naming the full disk", func() error {
		code, body := readyBody(t, hub)
		if code != 503 || !strings.Contains(body, "disk full") {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	toNonReady := time.Since(filled)

	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://"+hub.http+"/api/v1/ingest",
		strings.NewReader(`{"machine":"script","metrics":[{"name":"x","value":1}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+hub.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(resp); resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "disk full") {
		t.Fatalf("HTTP ingest while full: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// Stay full for a while: the old hub panicked within 30-60 s here (a
	// head chunk file it could not preallocate); this one writes nothing.
	time.Sleep(10 * time.Second)
	select {
	case <-hub.done:
		t.Fatal("hub exited while the disk was full")
	default:
	}
	metrics := func() string {
		resp, err := http.Get("http://" + hub.http + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		return readAll(resp)
	}
	if m := metrics(); !strings.Contains(m, "sysmonstm_storage_disk_full 1") ||
		strings.Contains(m, `sysmonstm_rejected_requests_total{reason="disk_full"} 0`) {
		t.Fatalf("metrics while full do not show it:\n%s", grepLines(m, "disk_full"))
	}
	if n := strings.Count(hub.out.String(), "level=ERROR"); n > 10 {
		t.Fatalf("%d error lines in %s of a full disk; want them rate-limited", n, time.Since(filled).Round(time.Second))
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	testutil.WaitFor(t, 10*time.Second, "/ready 200 after the filler is removed", func() error {
		if code, body := readyBody(t, hub); code != 200 {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	toReady := time.Since(freed)
	// The agent reconnects within its backoff (at most 30 s) and replays.
	testutil.WaitFor(t, 45*time.Second, "the agent caught up", func() error {
		seqs := exportJSON(t, hub, "tight", "sysmonstm_agent_seq", "-5m")
		last, err := time.Parse(time.RFC3339, seqs[len(seqs)-1].Timestamp)
		if err != nil {
			return err
		}
		if last.Before(time.Now().Add(-2 * time.Second)) {
			return fmt.Errorf("newest batch at %s", last)
		}
		return nil
	})
	caughtUp := time.Since(freed)

	seqs := exportJSON(t, hub, "tight", "sysmonstm_agent_seq", "-5m")
	var prev float64
	var stamps []string
	for _, p := range seqs {
		if p.Value != prev+1 {
			t.Fatalf("stored seq %v follows %v: gap or duplicate across the full disk", p.Value, prev)
		}
		prev = p.Value
		stamps = append(stamps, p.Timestamp)
	}
	up := exportJSON(t, hub, "tight", "uptime_seconds", "-5m")
	n := min(len(stamps), len(up))
	for i := range n {
		if up[i].Timestamp != stamps[i] {
			t.Fatalf("uptime_seconds sample %d at %s, batch at %s: a batch's samples are missing or doubled", i, up[i].Timestamp, stamps[i])
		}
	}
	if n < len(stamps)-2 {
		t.Fatalf("%d uptime_seconds samples for %d batches", len(up), len(stamps))
	}
	t.Logf("non-ready %s after the fill; ready %s after the filler went; agent caught up after %s; seqs 1..%v stored once each (0 lost)",
		toNonReady.Round(time.Millisecond), toReady.Round(time.Millisecond), caughtUp.Round(time.Millisecond), prev)

	// A hub does not start on a full disk: it names the full disk and the
	// data dir instead of "disk I/O error (4874)" or a panic.
	hub.kill(syscall.SIGTERM)
	fillDisk(t, filler, 4<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := commandContext(ctx, t, "hub", "--data-dir", dataDir, "--listen-http", "127.0.0.1:0", "--listen-grpc", "127.0.0.1:0", "--min-free-disk-mib", "16")
	cmd.Env = append(cmd.Env, "SYSMONSTM_LOG_FORMAT=text")
	out, err := cmd.CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("hub on a full disk: err %v (want an exit with an error)\n%s", err, out)
	}
	if s := string(out); !strings.Contains(s, "disk full") || !strings.Contains(s, dataDir) || strings.Contains(s, "panic") {
		t.Fatalf("hub on a full disk said:\n%s\nwant an error naming the full disk and %s", s, dataDir)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
