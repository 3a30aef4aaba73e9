package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// TestForgottenMachineLeavesTopAndEdge: a machine the hub forgets by
// itself (--forget-offline-after) leaves `sysmonstm top`, whose open detail
// of it goes back to the overview and says why, and leaves the edge's
// state and its browsers' pages, without a restart of either.
func TestForgottenMachineLeavesTopAndEdge(t *testing.T) {
	t.Parallel()
	e := startEdgeRelay(t, "")
	hub := startHub(t, t.TempDir(), "", "", edgeHubFlags(e, "--offline-after", "1s", "--forget-offline-after", "2s")...)
	startAgent(t, hub, "stays-1")
	doomed := startAgent(t, hub, "doomed-1")
	waitOnline(t, hub, "stays-1", "doomed-1")
	testutil.WaitFor(t, 15*time.Second, "both machines at the edge", func() error {
		if ms := edgeMachines(t, e); len(ms) != 2 {
			return fmt.Errorf("edge has %d machines", len(ms))
		}
		return nil
	})

	// A browser on the edge's page: its stream says what to remove.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+e.http+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(16 << 20)
	removed := make(chan string, 8)
	go func() {
		defer close(removed)
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			var m struct {
				Type    string          `json:"type"`
				Machine json.RawMessage `json:"machine"`
			}
			if json.Unmarshal(b, &m) == nil && m.Type == "remove" {
				removed <- string(m.Machine)
			}
		}
	}()

	// top with the doomed machine's detail open.
	top := startTop(t, 100, 30, "--hub", "http://"+hub.http)
	top.expect(0, 15*time.Second, "stays-1", "doomed-1", "2 machines, 2 up")
	m := top.mark()
	top.send("/doomed")
	top.expect(m, 5*time.Second, "/doomed")
	m = top.mark()
	top.send("\r") // keep the filter
	top.expect(m, 5*time.Second, `filter "doomed"`)
	m = top.mark()
	top.send("\r") // open the only row
	top.expect(m, 5*time.Second, "doomed-1", "FILESYSTEMS", "last seen")

	doomed.kill(syscall.SIGKILL)
	m = top.mark()
	top.expect(m, 30*time.Second, "machine doomed-1 was forgotten by the hub", "1 machines, 1 up", "MACHINE")
	select {
	case id, ok := <-removed:
		if !ok || id != `"doomed-1"` {
			t.Fatalf("edge browser stream: remove %s (open %v)", id, ok)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the edge's browsers were not told to remove doomed-1")
	}
	ms := edgeMachines(t, e)
	if _, ok := ms["doomed-1"]; ok || len(ms) != 1 {
		t.Fatalf("edge machines after the forget: %v", ms)
	}
	if v := promValue(t, "http://"+hub.http+"/metrics", `sysmonstm_edge_messages_total{type="remove"}`); v != 1 {
		t.Errorf("remove messages sent to the edge: %v", v)
	}
	var health struct {
		Rejected int `json:"rejected_messages"`
	}
	getJSON(t, "http://"+e.http+"/health", &health)
	if health.Rejected != 0 {
		t.Errorf("edge rejected %d messages", health.Rejected)
	}
}

// TestBrowserEdgeForgottenMachine: a machine an admin forgets on the hub
// leaves the edge's page in an open browser, without a reload.
func TestBrowserEdgeForgottenMachine(t *testing.T) {
	t.Parallel()
	const password = "edge-forget-Pa55word"
	setEnv(t, "SYSMONSTM_ADMIN_PASSWORD", password)
	b := newBrowser(t, 1280, 900, 90*time.Second)
	e := startEdgeRelay(t, "")
	hub := startHub(t, t.TempDir(), "", "", edgeHubFlags(e)...)
	calm := []ingestSample{{Name: "cpu_usage_percent", Labels: map[string]string{"cpu": "total"}, Value: 10}}
	for _, id := range []string{"a-gone", "b-stays"} {
		if err := ingest(t, hub, id, calm); err != nil {
			t.Fatal(err)
		}
	}
	b.run("open the edge page", chromedp.Navigate("http://"+e.http+"/"))
	b.waitJS(15*time.Second, "two cards", edgeCardIDs+`.join(",") === "a-gone,b-stays"`)

	token := alertsLogin(t, hub, "admin", password)
	alertsAPI(t, hub, token, http.MethodDelete, "/api/machines/a-gone", nil, nil)
	b.waitJS(10*time.Second, "a-gone's card dropped", edgeCardIDs+`.join(",") === "b-stays" && document.querySelectorAll('#cards .card').length === 1`)
	if c := js[string](b, `document.getElementById("counts").textContent`); !strings.HasPrefix(c, "1 machines") {
		t.Errorf("counts after the forget: %q", c)
	}
	b.checkClean()
}
