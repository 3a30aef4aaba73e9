package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"github.com/sysmonstm/sysmonstm/internal/wire"
	"github.com/sysmonstm/sysmonstm/internal/wire/wiretest"
)

// wireStream is the order in which the test's /ws sends the wire fixtures.
var wireStream = []string{
	wiretest.Snapshot, wiretest.Metrics, wiretest.Machine, wiretest.Processes,
	wiretest.Summary, wiretest.Alert, wiretest.Error, wiretest.MachineForgotten,
}

// startWireServer serves the dashboard's files and a /ws that sends every
// wire fixture of wireStream, then passes on what the client sends.
func startWireServer(t *testing.T) (*httptest.Server, <-chan []byte) {
	t.Helper()
	fixtures := map[string][]byte{}
	for _, name := range wiretest.Names {
		fixtures[name] = wiretest.Read(t, name)
	}
	received := make(chan []byte, 16)
	mux := http.NewServeMux()
	mux.Handle("/ui/", http.StripPrefix("/ui/", http.FileServer(http.Dir("../internal/web/ui"))))
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><meta charset="utf-8"><title>wire fixtures</title>`)
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		for _, name := range wireStream {
			if err := c.Write(ctx, websocket.MessageText, fixtures[name]); err != nil {
				return
			}
		}
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			select {
			case received <- b:
			default:
			}
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, received
}

// sameJSON fails t unless got and want are the same JSON value.
func sameJSON(t *testing.T, what string, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v in %s", what, err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: %v in %s", what, err, want)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %s\nwant %s", what, got, want)
	}
}

// headline is what feed.worker.js makes of a metrics list for the
// overview: [cpu, mem, fullest disk, its mountpoint, load1, rx, tx], null
// where the list has no value; rx and tx sum every interface.
func headline(vs []wire.Value) []any {
	out := make([]any, 7)
	var rx, tx float64
	var hasRx, hasTx bool
	for _, v := range vs {
		if v.Value == nil {
			continue
		}
		x := *v.Value
		switch v.Name {
		case "cpu_usage_percent":
			if v.Labels["cpu"] == "total" {
				out[0] = x
			}
		case "memory_usage_percent":
			out[1] = x
		case "filesystem_usage_percent":
			if out[2] == nil || x > out[2].(float64) {
				out[2], out[3] = x, v.Labels["mountpoint"]
			}
		case "load1":
			out[4] = x
		case "network_receive_bytes_per_second":
			rx, hasRx = rx+x, true
		case "network_transmit_bytes_per_second":
			tx, hasTx = tx+x, true
		}
	}
	if hasRx {
		out[5] = rx
	}
	if hasTx {
		out[6] = tx
	}
	return out
}

// TestBrowserWireFixtures: the dashboard's feed worker (feed.worker.js),
// running in Chromium against a /ws that sends the wire fixtures, reads
// them as internal/wire does. Overview mode: the snapshot's machines with
// their identity and headline values, the batch's headline and CPU point,
// and the machine, alert and forgotten-machine events in order. Machine
// mode: it subscribes with the subscribe fixture and passes the machine's
// snapshot entry and events on unchanged; summary and error messages are
// not for it.
func TestBrowserWireFixtures(t *testing.T) {
	b := newBrowser(t, 800, 600, 60*time.Second)
	srv, received := startWireServer(t)
	b.run("open page", chromedp.Navigate(srv.URL+"/"))

	start := func(mode, id string) {
		b.exec("start worker "+mode, fmt.Sprintf(`(() => {
  window.got = [];
  const w = new Worker("/ui/js/feed.worker.js");
  w.onmessage = (e) => { if (e.data.type !== "status") window.got.push(JSON.stringify(e.data)); };
  w.onerror = (e) => window.got.push(JSON.stringify({type: "worker error", text: e.message}));
  w.postMessage({mode: %q, id: %q});
  window.worker = w;
})()`, mode, id))
	}
	var snap wire.Snapshot
	if err := json.Unmarshal(wiretest.Read(t, wiretest.Snapshot), &snap); err != nil {
		t.Fatal(err)
	}
	var batch wire.Metrics
	if err := json.Unmarshal(wiretest.Read(t, wiretest.Metrics), &batch); err != nil {
		t.Fatal(err)
	}

	// Overview: a snapshot message, then batches of updates and events.
	start("overview", "")
	b.waitJS(10*time.Second, "overview batch", `window.got.length >= 2 && window.got.slice(1).reduce((n, m) => n + JSON.parse(m).events.length, 0) >= 3`)
	got := js[[]string](b, `window.got`)
	b.exec("stop worker", `window.worker.terminate()`)
	var ov struct {
		Type     string `json:"type"`
		Machines []struct {
			ID       string            `json:"id"`
			Hostname string            `json:"hostname"`
			Labels   map[string]string `json:"labels"`
			Online   bool              `json:"online"`
			LastSeen time.Time         `json:"last_seen"`
			V        []any             `json:"v"`
		} `json:"machines"`
	}
	if err := json.Unmarshal([]byte(got[0]), &ov); err != nil || ov.Type != wire.TypeSnapshot || len(ov.Machines) != 1 {
		t.Fatalf("overview snapshot: %v %s", err, got[0])
	}
	wm, om := snap.Machines[0], ov.Machines[0]
	if om.ID != wm.ID || om.Hostname != wm.Hostname || !reflect.DeepEqual(om.Labels, wm.Labels) || om.Online != wm.Online || !om.LastSeen.Equal(*wm.LastSeen) {
		t.Errorf("overview snapshot machine %+v, want %+v", om, wm)
	}
	if want := headline(*wm.Metrics); !reflect.DeepEqual(om.V, want) {
		t.Errorf("overview snapshot headline %v, want %v", om.V, want)
	}
	var ups []any
	var events []json.RawMessage
	for _, m := range got[1:] {
		var bm struct {
			Type   string            `json:"type"`
			Ups    []any             `json:"ups"`
			Events []json.RawMessage `json:"events"`
		}
		if err := json.Unmarshal([]byte(m), &bm); err != nil || bm.Type != "batch" {
			t.Fatalf("overview: %v %s", err, m)
		}
		ups = append(ups, bm.Ups...)
		events = append(events, bm.Events...)
	}
	want := []any{batch.Machine, float64(batch.Ts), headline(batch.Metrics), []any{12.5}}
	if len(ups) != 1 || !reflect.DeepEqual(ups[0], want) {
		t.Errorf("overview updates %v, want [%v]", ups, want)
	}
	evNames := []string{wiretest.Machine, wiretest.Alert, wiretest.MachineForgotten}
	if len(events) != len(evNames) {
		t.Fatalf("overview events: %d, want %d: %s", len(events), len(evNames), events)
	}
	for i, name := range evNames {
		sameJSON(t, "overview event "+name, events[i], wiretest.Read(t, name))
	}

	// Machine page: subscribe, then the machine's messages as they came.
	start("machine", wiretest.MachineID)
	passed := []string{wiretest.Metrics, wiretest.Machine, wiretest.Processes, wiretest.Alert, wiretest.MachineForgotten}
	b.waitJS(10*time.Second, "machine messages", fmt.Sprintf(`window.got.length >= %d`, 1+len(passed)))
	got = js[[]string](b, `window.got`)
	b.exec("stop worker", `window.worker.terminate()`)
	if len(got) != 1+len(passed) {
		t.Fatalf("machine mode: %d messages, want %d: %q", len(got), 1+len(passed), got)
	}
	var ms struct {
		Type    string          `json:"type"`
		Machine json.RawMessage `json:"machine"`
	}
	if err := json.Unmarshal([]byte(got[0]), &ms); err != nil || ms.Type != wire.TypeSnapshot {
		t.Fatalf("machine snapshot: %v %s", err, got[0])
	}
	wantMachine, _ := json.Marshal(snap.Machines[0])
	sameJSON(t, "machine snapshot entry", ms.Machine, wantMachine)
	for i, name := range passed {
		sameJSON(t, "machine mode "+name, []byte(got[1+i]), wiretest.Read(t, name))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		select {
		case msg := <-received:
			var sub wire.Subscribe
			if json.Unmarshal(msg, &sub) != nil || sub.Subscribe == nil {
				continue // the overview's worker sends nothing; skip stray frames
			}
			sameJSON(t, "subscribe", msg, wiretest.Read(t, wiretest.Subscribe))
			b.checkClean()
			return
		case <-ctx.Done():
			t.Fatal("the machine page's worker did not subscribe")
		}
	}
}
