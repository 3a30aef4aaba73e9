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

// TestBrowserEdgeWireFixtures: the edge's page (edge.js), in Chromium
// against a /ws that sends the edge's browser fixtures (status, snapshot,
// metrics, machine, then remove), shows the fixtures' machine: one card
// with its id, its labels as chips (control and bidi characters visible),
// the batch's headline values as the page formats them, online, and then
// no card once the remove arrives.
func TestBrowserEdgeWireFixtures(t *testing.T) {
	b := newBrowser(t, 1000, 700, 60*time.Second)
	removeNow := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, "../internal/edge/ui/index.html")
	})
	mux.HandleFunc("/ui/dom.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, "../internal/webdom/dom.js")
	})
	mux.Handle("/ui/", http.StripPrefix("/ui/", http.FileServer(http.Dir("../internal/edge/ui"))))
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		send := func(name string) bool {
			return c.Write(ctx, websocket.MessageText, wiretest.Read(t, name)) == nil
		}
		for _, name := range []string{wiretest.EdgeBrowserStatus, wiretest.EdgeBrowserSnapshot, wiretest.EdgeBrowserMetrics, wiretest.EdgeBrowserMachine} {
			if !send(name) {
				return
			}
		}
		select {
		case <-removeNow:
			send(wiretest.EdgeBrowserRemove)
		case <-ctx.Done():
			return
		}
		<-ctx.Done()
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	var me struct {
		Machine struct {
			ID     string            `json:"id"`
			Labels map[string]string `json:"labels"`
		} `json:"machine"`
	}
	if err := json.Unmarshal(wiretest.Read(t, wiretest.EdgeBrowserMachine), &me); err != nil {
		t.Fatal(err)
	}
	labels, _ := json.Marshal(me.Machine.Labels)

	b.run("open edge page", chromedp.Navigate(srv.URL+"/"))
	card := fmt.Sprintf(`document.querySelector('article.card[data-id=%q]')`, me.Machine.ID)
	b.waitJS(10*time.Second, "card", card+` && `+card+`.dataset.ts === "1795348800000"`)
	got := js[map[string]any](b, fmt.Sprintf(`import("/ui/dom.js").then((d) => {
  const c = %s;
  const want = Object.keys(%s).sort().map((k) => d.visible(k + "=" + %s[k]));
  return {
    cards: document.querySelectorAll("article.card").length,
    id: c.querySelector("h2.id").textContent,
    chips: [...c.querySelectorAll(".chip")].map((e) => e.textContent),
    wantChips: want,
    values: [...c.querySelectorAll(".vals .v")].map((e) => e.textContent),
    online: c.querySelector(".dot").className,
    state: c.querySelector(".state").textContent,
    counts: document.getElementById("counts").textContent,
  };
})`, card, labels, labels))
	if got["cards"] != float64(1) || got["id"] != me.Machine.ID || got["online"] != "dot on" || got["state"] != "up 1d 0h" ||
		got["counts"] != "1 machines · 1 online · 0 offline" {
		t.Errorf("edge page: %v", got)
	}
	if fmt.Sprint(got["chips"]) != fmt.Sprint(got["wantChips"]) || len(got["chips"].([]any)) != len(me.Machine.Labels) {
		t.Errorf("chips %q, want %q", got["chips"], got["wantChips"])
	}
	// The batch: CPU 12.5, memory 41.25, fullest disk 77.3, load 0.42,
	// eth0 10240 and 2048.5 bytes/s (lo left out).
	if want := "[13% 41% 77% 0.42 10.2 kB/s 2.0 kB/s]"; fmt.Sprint(got["values"]) != want {
		t.Errorf("card values %v, want %s", got["values"], want)
	}

	close(removeNow)
	b.waitJS(10*time.Second, "card removed", `!`+card+` && document.getElementById("counts").textContent === "0 machines · 0 online · 0 offline"`)
	b.checkClean()
}
