package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// axesCheck is a JS expression: for every chart on the page, what is wrong
// with its axes, as "chart: problem" strings (empty when all is well):
//   - y labels that repeat, that do not state their tick's value exactly in
//     their unit ("9.31 GiB" for 10^10 bytes), or that do not fit in the
//     axis (clipped at the canvas' left edge);
//   - x labels that overlap the next one or stick out of the canvas.
//
// Text is measured with the axis' own font on the chart's canvas.
const axesCheck = `(() => {
  const dpr = window.devicePixelRatio || 1;
  const mult = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4, k: 1e3, M: 1e6, G: 1e9, "%": 1, "": 1 };
  const out = [];
  for (const el of document.querySelectorAll(".chart")) {
    const u = el.querySelector(".plot").uplot;
    const name = el.dataset.chart;
    if (!u) { out.push(name + ": no chart"); continue; }
    const width = (a, s) => { u.ctx.font = a.font[0]; return Math.max(...String(s).split("\n").map((l) => u.ctx.measureText(l).width)) / dpr; };
    const y = u.axes[1], ys = y._splits || [], yv = y._values || [];
    const shown = yv.filter((v) => v != null);
    if (shown.length < 2) out.push(name + ": y labels " + JSON.stringify(yv));
    if (new Set(shown).size !== shown.length) out.push(name + ": repeated y labels " + JSON.stringify(yv));
    yv.forEach((v, i) => {
      if (v == null) return;
      const m = /^(-?[0-9.]+)(?: (\S+?)(?:\/s)?)?$/.exec(v);
      const f = m && mult[m[2] || ""];
      if (!f) { out.push(name + ": y label " + JSON.stringify(v) + " unparsed"); return; }
      const got = parseFloat(m[1]) * f, want = ys[i];
      if (Math.abs(got - want) > 1e-6 * Math.max(1, Math.abs(want))) out.push(name + ": y label " + JSON.stringify(v) + " for " + want);
      const w = width(y, v) + y.ticks.size + y.gap;
      if (w > y._size) out.push(name + ": y label " + JSON.stringify(v) + " needs " + w.toFixed(1) + " px, axis " + y._size);
    });
    const x = u.axes[0], xs = x._splits || [], xv = x._values || [];
    const left = u.bbox.left / dpr;
    let prev = null;
    xv.forEach((v, i) => {
      if (v == null) return;
      const c = left + u.valToPos(xs[i], "x"), half = width(x, v) / 2;
      if (c - half < 0 || c + half > u.width) out.push(name + ": x label " + JSON.stringify(v) + " outside the canvas");
      if (prev && c - half < prev.r) out.push(name + ": x label " + JSON.stringify(v) + " overlaps " + JSON.stringify(prev.v));
      prev = { v, r: c + half };
    });
    if (xv.filter((v) => v != null).length < 2) out.push(name + ": x labels " + JSON.stringify(xv));
  }
  return out;
})()`

type pointSample struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Value  float64           `json:"value"`
	TS     int64             `json:"ts"`
}

// ingestPoints posts samples with their own timestamps.
func ingestPoints(t *testing.T, hub *hubProc, machine string, samples []pointSample) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"machine": machine, "metrics": samples})
	resp, err := hub.postIngest(body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || bytes.Contains(b, []byte(`"rejected":`)) && !bytes.Contains(b, []byte(`"rejected":0`)) {
		t.Fatalf("ingest: status %d: %s", resp.StatusCode, truncate(string(b)))
	}
}

// TestBrowserChartAxes: the machine page's charts label their axes in
// round steps of the unit, every label distinct and whole (not clipped),
// x labels apart, at desktop and phone width; the overview explains its
// health counts; the header fits a phone. The axis and health functions
// are also checked on their own, in the page.
func TestBrowserChartAxes(t *testing.T) {
	t.Parallel()
	b := newBrowser(t, 1400, 900, 120*time.Second)
	hub := startHub(t, t.TempDir(), "", "")
	base := "http://" + hub.http

	// Values that made odd axes: a fraction of a byte per second, some
	// hundred MiB/s, 10^10 bytes of memory, CPU over its critical threshold.
	now := time.Now()
	var samples []pointSample
	for i := 24; i >= 0; i-- {
		ts := now.Add(-time.Duration(i) * 10 * time.Second).UnixMilli()
		f := float64(i % 5)
		eth := map[string]string{"interface": "eth0"}
		samples = append(samples,
			pointSample{"cpu_usage_percent", map[string]string{"cpu": "total"}, 95, ts},
			pointSample{"memory_total_bytes", nil, 1e10, ts},
			pointSample{"memory_used_bytes", nil, 6e9 + f*2e8, ts},
			pointSample{"memory_usage_percent", nil, 60 + f*2, ts},
			pointSample{"network_receive_bytes_per_second", eth, 0.1 + f*0.1, ts},
			pointSample{"network_transmit_bytes_per_second", eth, 100<<20 + f*(12<<20), ts},
			pointSample{"disk_read_bytes_per_second", map[string]string{"device": "sda"}, 1.43 * (1 << 20) * (1 + f/10), ts},
			pointSample{"disk_write_bytes_per_second", map[string]string{"device": "sda"}, 900 + f*100, ts},
			pointSample{"load1", nil, 0.3 + f*0.05, ts},
		)
	}
	ingestPoints(t, hub, "axes-1", samples)

	b.run("open overview", chromedp.Navigate(base+"/"))
	b.waitJS(10*time.Second, "row", rowIDs+`.join(",") === "axes-1"`)

	// The overview says why a machine is critical with no alert firing.
	b.waitJS(5*time.Second, "critical by threshold", `document.querySelector('.count[data-count="crit"] .num').textContent === "1"`)
	time.Sleep(300 * time.Millisecond)
	note := js[string](b, `(() => { const n = document.getElementById("health-note"); return n && !n.hidden ? n.textContent : ""; })()`)
	if !strings.Contains(note, "threshold") || !strings.Contains(note, "not by an alert rule") {
		t.Errorf("health note %q", note)
	}
	tips := js[[]string](b, `["crit", "warn", "alert"].map((k) => document.querySelector('.count[data-count="' + k + '"]').title).concat(document.querySelector('.vlist a.row .dot').title)`)
	if !strings.Contains(tips[0], "90 %") || !strings.Contains(tips[1], "75 %") || !strings.Contains(tips[2], "Rules") || tips[3] != "online, critical: CPU 95 % ≥ 90 %" {
		t.Errorf("tooltips (critical, warning, alerts, dot) = %q", tips)
	}

	// The machine page's axes, at desktop and phone width.
	b.run("open machine", chromedp.Navigate(base+"/machines/axes-1"))
	b.waitJS(15*time.Second, "charts", `(document.documentElement.dataset.loaded || "").startsWith("live:") && document.querySelectorAll('.chart .uplot').length >= 5`)
	time.Sleep(300 * time.Millisecond)
	for _, p := range js[[]string](b, axesCheck) {
		t.Errorf("desktop: %s", p)
	}
	b.screenshot("axes-desktop")
	for _, r := range []string{"1h", "24h", "7d", "30d"} {
		b.run("range "+r, chromedp.Click(chromedp.CSS(`button[data-range="`+r+`"]`)))
		b.waitJS(10*time.Second, "range "+r, `(document.documentElement.dataset.loaded || "").startsWith("`+r+`:") && !document.querySelector('.sections.loading')`)
		for _, p := range js[[]string](b, axesCheck) {
			t.Errorf("desktop, %s: %s", r, p)
		}
	}
	b.screenshot("axes-30d")
	b.run("live", chromedp.Click(chromedp.CSS(`button[data-range="live"]`)))
	b.waitJS(10*time.Second, "live again", `(document.documentElement.dataset.loaded || "").startsWith("live:")`)
	b.exec("scroll to network", `document.querySelector('.section[data-section="network"]').scrollIntoView()`)
	b.screenshot("axes-network")

	b.run("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	b.waitJS(5*time.Second, "charts resized", `[...document.querySelectorAll('.chart .plot')].every((p) => p.uplot && p.uplot.width < 390)`)
	time.Sleep(300 * time.Millisecond)
	for _, p := range js[[]string](b, axesCheck) {
		t.Errorf("phone: %s", p)
	}
	b.exec("top", `window.scrollTo(0, 0)`)
	b.screenshot("axes-phone")

	// The header at phone width: no sideways scrolling, the pages on one
	// line below the brand, every link whole on screen.
	for _, page := range []string{"/", "/machines/axes-1", "/alerts"} {
		b.run("open "+page, chromedp.Navigate(base+page))
		b.waitJS(10*time.Second, "page "+page, `document.querySelector("main > :not(.muted)")`)
		time.Sleep(200 * time.Millisecond)
		got := js[string](b, `(() => {
  const bad = [];
  const w = window.innerWidth;
  if (document.documentElement.scrollWidth > w) bad.push("page " + document.documentElement.scrollWidth + " px wide");
  const head = document.querySelector(".topbar").getBoundingClientRect();
  if (head.height > 90) bad.push("header " + head.height + " px tall");
  const links = [...document.querySelectorAll(".nav a:not([hidden])")].map((a) => a.getBoundingClientRect());
  if (new Set(links.map((r) => Math.round(r.top))).size !== 1) bad.push("nav links on " + new Set(links.map((r) => Math.round(r.top))).size + " lines");
  for (const r of links) if (r.left < 0 || r.right > w || r.height > 32) bad.push("nav link at " + r.left + "–" + r.right + " height " + r.height);
  for (const e of document.querySelectorAll(".topbar > *:not(nav)")) {
    const r = e.getBoundingClientRect();
    if (r.width && (r.right > w || r.height > 40)) bad.push(e.className + " at " + r.left + "–" + r.right + " height " + r.height);
  }
  return bad.join("; ");
})()`)
		if got != "" {
			t.Errorf("phone header on %s: %s", page, got)
		}
	}
	b.screenshot("header-phone")

	// Units: format.js's axes, machines.js's health and dom.js's
	// visible, in the page.
	units := js[[]string](b, `Promise.all([import("/ui/js/format.js"), import("/ui/js/machines.js"), import("/ui/js/dom.js")]).then(([f, m, d]) => {
  const bad = [];
  const eq = (what, got, want) => { if (JSON.stringify(got) !== JSON.stringify(want)) bad.push(what + ": " + JSON.stringify(got) + ", want " + JSON.stringify(want)); };
  eq("rate below 1 B/s", f.axisValues("rate", [0, 0.2, 0.4, 0.6000000000000001, 0.8, 1], 0.2, 0, 1.08), ["0.0 B/s", "0.2 B/s", "0.4 B/s", "0.6 B/s", "0.8 B/s", "1.0 B/s"]);
  eq("10^10 bytes", f.axisUnit("bytes", 0, 1e10), { div: 1024 ** 3, name: "GiB" });
  eq("memory ticks", f.axisValues("bytes", [0, 5 * 1024 ** 3, 10 * 1024 ** 3], 5 * 1024 ** 3, 0, 1.08e10), ["0 GiB", "5 GiB", "10 GiB"]);
  eq("MiB/s", f.axisValues("rate", [0, 0.5 * 1024 ** 2, 1024 ** 2, 1.5 * 1024 ** 2], 0.5 * 1024 ** 2, 0, 1.6 * 1024 ** 2), ["0.0 MiB/s", "0.5 MiB/s", "1.0 MiB/s", "1.5 MiB/s"]);
  eq("counts", f.axisValues("num", [0, 2000, 4000], 2000, 0, 4500), ["0 k", "2 k", "4 k"]);
  eq("percent", f.axisValues("pct", [0, 50, 100], 50, 0, 100), ["0 %", "50 %", "100 %"]);
  eq("no -0", f.axisValues("num", [-0.1, -1e-17, 0.1], 0.1, -0.1, 0.1), ["-0.1", "0.0", "0.1"]);
  const inc = f.axisIncrs("rate", 0, 3 * 1024 ** 2);
  eq("MiB steps", [0.1, 0.2, 0.5, 1, 2, 5].every((s) => inc.some((x) => Math.abs(x - s * 1024 ** 2) < 1e-6)), true);
  eq("no KiB steps on a MiB axis", inc.includes(100 * 1024), false);
  const t0 = new Date(2026, 0, 2, 23, 59, 30).getTime() / 1000;
  const tl = f.timeAxisValues([t0, t0 + 30, t0 + 60], 30);
  eq("time labels", [tl[0].split("\n")[0], tl[1].split("\n")[0], tl[2].split("\n")[0]], ["23:59:30", "00:00:00", "00:00:30"]);
  eq("day on the first tick and at midnight", tl.map((l) => l.includes("\n")), [true, true, false]);
  eq("visible", d.visible("\u202egnp.exe\u202c a\u0007b\tc\u200b\u2066x\u2069 عربي"), "[U+202E]gnp.exe[U+202C] a[U+0007]b[U+0009]c[U+200B][U+2066]x[U+2069] عربي");
  eq("lines", d.lines("a\nb\r\nc").map((x) => (typeof x === "string" ? x : x.tagName)), ["a", "BR", "b", "BR", "c"]);
  const r = new m.Machine("x");
  r.setInfo({ online: true });
  r.apply([10, 10, 10, "/", 0, 0, 0], null);
  r.alerts = 1; r.alertsCrit = false; r.updateHealth();
  eq("a warning alert makes warning health", [r.health, r.why], ["warn", "1 firing alert"]);
  r.alertsCrit = true; r.updateHealth();
  eq("a critical alert makes critical health", r.health, "crit");
  r.alerts = 0; r.alertsCrit = false; r.apply([95, 85, 10, "/", 0, 0, 0], null);
  eq("thresholds say why", [r.health, r.why], ["crit", "CPU 95 % ≥ 90 %, memory 85 % ≥ 80 %"]);
  return bad;
}).catch((e) => ["the modules lack what is tested: " + e])`)
	for _, u := range units {
		t.Errorf("unit: %s", u)
	}

	b.checkClean()
}

// TestBrowserVisibleStrings: a machine id with a right-to-left override and
// a zero-width space, and labels with control characters, show those
// characters as visible [U+XXXX] markers on the hub's overview, machine
// page and alerts page (as on the edge), never reordered or hidden; links
// and filters still use the raw id.
func TestBrowserVisibleStrings(t *testing.T) {
	t.Parallel()
	const password = "visible-e2e-Pa55word"
	setEnv(t, "SYSMONSTM_ADMIN_PASSWORD", password)
	b := newBrowser(t, 1400, 900, 120*time.Second)
	hub := startHub(t, t.TempDir(), "", "")
	const id = "\u202egnp.exe\u202c-\u200bhost"
	const shown = "[U+202E]gnp.exe[U+202C]-[U+200B]host"
	startAgent(t, hub, id, "--labels", "dir=\u202eevil,ctl=a\u0007b\u001bc")
	waitOnline(t, hub, id)
	base := "http://" + hub.http
	token := alertsLogin(t, hub, "admin", password)
	alertsAPI(t, hub, token, http.MethodPost, "/api/rules", map[string]any{
		"name": "Any CPU \u202eyrev", "metric": "cpu_usage_percent", "matchers": map[string]string{"cpu": "total"},
		"machines": "*", "op": ">", "threshold": -1, "for": "0s", "severity": "critical",
	}, nil)

	// Overview.
	b.run("open overview", chromedp.Navigate(base+"/"))
	b.waitJS(10*time.Second, "row", rowIDs+`.length === 1`)
	row := `document.querySelector('.vlist a.row:not([hidden])')`
	got := js[[]string](b, `[`+row+`.querySelector('.id').textContent, `+row+`.title, decodeURIComponent(new URL(`+row+`.href).pathname), `+row+`.dataset.id].concat([...`+row+`.querySelectorAll('.chip')].map((e) => e.textContent))`)
	want := []string{shown, shown, "/machines/" + id, id, "ctl=a[U+0007]b[U+001B]c", "dir=[U+202E]evil"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("overview [id, title, link, data-id, chips] = %q, want %q", got, want)
	}
	b.screenshot("visible-overview")

	// Machine page.
	b.run("open machine", chromedp.Click(chromedp.CSS(`.vlist a.row:not([hidden])`)))
	b.waitJS(10*time.Second, "machine page", `(document.documentElement.dataset.loaded || "").startsWith("live:")`)
	b.waitJS(30*time.Second, "alert strip", `!document.getElementById("machine-alerts").hidden`)
	got = js[[]string](b, `[document.getElementById("machine-id").textContent, document.title,
  [...document.querySelectorAll('.mhead .chip')].map((e) => e.textContent).join(" "),
  [...document.querySelectorAll('.info div')].find((d) => d.querySelector('dt').textContent === "Labels").querySelector('dd').textContent,
  document.querySelector('#machine-alerts li a').textContent]`)
	want = []string{shown, shown + " — sysmonstm", "ctl=a[U+0007]b[U+001B]c dir=[U+202E]evil", "ctl=a[U+0007]b[U+001B]c dir=[U+202E]evil", "Any CPU [U+202E]yrev"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("machine page [h1, title, chips, info labels, alert] = %q, want %q", got, want)
	}
	b.screenshot("visible-machine")

	// Alerts page: the machine cell, its link and the machine filter.
	b.run("open alerts", chromedp.Navigate(base+"/alerts"))
	b.waitJS(30*time.Second, "alert row", `document.querySelector('#alerts-table tbody tr.al-row .al-machine')`)
	// The machine filter's options come from the machine list, which may
	// arrive after the alerts.
	b.waitJS(30*time.Second, "machine filter option", `[...document.querySelectorAll('option')].some((o) => o.value === `+jsString(id)+`)`)
	got = js[[]string](b, `(() => { const a = document.querySelector('#alerts-table tbody tr.al-row .al-machine');
  const o = [...document.querySelectorAll('option')].find((o) => o.value === `+jsString(id)+`);
  return [a.textContent, decodeURIComponent(new URL(a.href).pathname), o ? o.textContent : "no option",
    document.querySelector('#alerts-table tbody tr.al-row td:nth-child(2) a').textContent]; })()`)
	want = []string{shown, "/machines/" + id, shown, "Any CPU [U+202E]yrev"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("alerts page [machine, link, filter option, rule] = %q, want %q", got, want)
	}
	b.screenshot("visible-alerts")
	// Nothing on any page shows the raw override.
	if n := js[int](b, `document.body.innerText.split("").filter((c) => /[\u202a-\u202e\u200b\u0007]/.test(c)).length`); n != 0 {
		t.Errorf("alerts page text holds %d raw bidi or control characters", n)
	}
	b.checkClean()
}
