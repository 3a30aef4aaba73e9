package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// hostileMount is a filesystem label value that is markup, quotes and
// PromQL/regex metacharacters: the chart link must escape it and the
// Explore page must show it as text.
const hostileMount = `/mnt/<img src=x onerror="window.__pwned=1">"\'{a|b}`

// TestBrowserExplore: on a hub that requires login, /explore sends the
// viewer to the login page and back; completion of a metric name, a label
// value and a label name by keyboard builds a query that draws a chart and
// fills the table; a bad query shows Prometheus' error; back and forward
// restore the queries; a machine chart's "Explore" link lands on its query
// and range, with a hostile label value shown as text.
func TestBrowserExplore(t *testing.T) {
	t.Parallel()
	const password = "explore-Pa55word"
	setEnv(t, "SYSMONSTM_ADMIN_PASSWORD", password)
	b := newBrowser(t, 1400, 1000, 150*time.Second)
	hub := startHub(t, t.TempDir(), "", "", "--require-login")
	startAgent(t, hub, "web-1")
	fs := map[string]string{"mountpoint": hostileMount, "device": "/dev/evil", "fstype": "ext4"}
	keepIngesting(t, hub, "web-1", 500*time.Millisecond, func() []ingestSample {
		return []ingestSample{{"filesystem_usage_percent", fs, 42}, {"filesystem_size_bytes", fs, 1 << 30}, {"filesystem_used_bytes", fs, 1 << 29}}
	})
	token := alertsLogin(t, hub, "admin", password)
	waitPromData(t, hub, token, `cpu_usage_percent{machine="web-1",cpu="total"}`)
	// The page's range query evaluates every 14 s back from an hour ago:
	// its last point can be up to 14 s before now, so wait until the
	// agent's data is older than that, or a fast run finds no point.
	testutil.WaitFor(t, 30*time.Second, "a range query's last step sees data", func() error {
		now := time.Now()
		code, env := promGet(t, hub, token, "/api/v1/query_range", url.Values{
			"query": {`cpu_usage_percent{machine="web-1",cpu="total"}`},
			"start": {strconv.FormatInt(now.Add(-time.Hour).Unix(), 10)},
			"end":   {strconv.FormatInt(now.Unix(), 10)},
			"step":  {"14"},
		})
		if code != http.StatusOK || env.Status != "success" {
			return fmt.Errorf("status %d: %s", code, env.Error)
		}
		if n, err := env.results(); err != nil || n == 0 {
			return fmt.Errorf("%d series (%v)", n, err)
		}
		return nil
	})
	base := "http://" + hub.http

	// Not logged in: the page's first API call sends the browser to login.
	b.run("open explore", chromedp.Navigate(base+"/explore"))
	b.waitJS(10*time.Second, "login page", `location.pathname === "/login"`)
	alertsBrowserLogin(b, base, "admin", password, "/explore")
	b.waitJS(10*time.Second, "explore page", `document.getElementById("explore-query") && document.querySelector('nav a[href="/explore"][aria-current="page"]')`)

	q := `document.getElementById("explore-query").value`
	// pressEnter is Enter as a keyboard sends it: one keyDown carrying its
	// text, so a handled (preventDefault) keydown inserts no line break.
	// (chromedp's SendKeys sends the text as a separate char event.)
	pressEnter := func() chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			down := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyDown, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13, Text: "\r", UnmodifiedText: "\r"}
			up := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyUp, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13}
			for _, p := range []input.DispatchKeyEventParams{down, up} {
				if _, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, p); err != nil {
					return chromedp.Void{}, err
				}
			}
			return chromedp.Void{}, nil
		}
	}
	waitQuery := func(what, want, also string) {
		t.Helper()
		testutil.WaitFor(t, 5*time.Second, what, func() error {
			got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](q))
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("query box %q, want %q", got, want)
			}
			if also != "" && !js[bool](b, "!!("+also+")") {
				return fmt.Errorf("%s is false", also)
			}
			return nil
		})
	}
	option := func(v string) string {
		return `[...document.querySelectorAll("#explore-suggest:not([hidden]) li[role=option]")].some(e => e.dataset.value === ` + jsString(v) + `)`
	}
	// A partial metric name; arrows move, Tab picks the entry under them.
	b.run("type metric", chromedp.Focus(chromedp.ID("explore-query")), typeInto(chromedp.ID("explore-query"), "cpu_usa"))
	b.waitJS(10*time.Second, "metric completion", option("cpu_usage_percent")+
		` && document.querySelector("#explore-suggest li[aria-selected=true]").dataset.value === "cpu_usage_percent"`)
	b.run("pick metric", typeInto(chromedp.ID("explore-query"), "\t"))
	waitQuery("metric picked", "cpu_usage_percent", `document.getElementById("explore-suggest").hidden`)
	// A label value, scoped to the metric, picked with Enter.
	b.run("type machine", typeInto(chromedp.ID("explore-query"), `{machine="we`))
	b.waitJS(10*time.Second, "value completion", option("web-1"))
	b.run("pick value", pressEnter())
	waitQuery("value picked", `cpu_usage_percent{machine="web-1"`, "")
	// A label name: picking it opens its values; Escape closes a list.
	b.run("type label", typeInto(chromedp.ID("explore-query"), ",cp"))
	b.waitJS(10*time.Second, "label completion", option("cpu"))
	b.run("pick label", typeInto(chromedp.ID("explore-query"), "\t"))
	waitQuery("label picked", `cpu_usage_percent{machine="web-1",cpu=""`, option("total"))
	b.run("escape", typeInto(chromedp.ID("explore-query"), "\x1b"))
	b.waitJS(5*time.Second, "closed", `document.getElementById("explore-suggest").hidden`)
	b.run("type total", typeInto(chromedp.ID("explore-query"), "tot"))
	b.waitJS(10*time.Second, "total", option("total"))
	b.run("pick total", pressEnter())
	waitQuery("value picked", `cpu_usage_percent{machine="web-1",cpu="total"`, "")
	b.run("close brace", typeInto(chromedp.ID("explore-query"), "}"))
	const good = `cpu_usage_percent{machine="web-1",cpu="total"}`

	// Enter runs it: a chart with one line, a table row, the URL.
	b.run("run", pressEnter())
	b.waitJS(15*time.Second, "result", `(document.documentElement.dataset.explore || "").startsWith("ok:") && document.querySelector("#explore-chart .uplot canvas")`)
	rows := js[[]string](b, `[...document.querySelectorAll("#explore-table tbody tr")].map(r => r.textContent)`)
	if len(rows) != 1 || !strings.Contains(rows[0], `cpu_usage_percent{cpu="total", machine="web-1"}`) || !strings.Contains(rows[0], "%") {
		t.Errorf("table rows = %q", rows)
	}
	if n := js[int](b, `document.querySelector("#explore-chart .plot").uplot.series.length`); n != 2 {
		t.Errorf("chart series = %d, want time + 1 line", n)
	}
	if pts := js[int](b, `document.querySelector("#explore-chart .plot").uplot.data[1].filter(v => v != null).length`); pts < 1 {
		t.Errorf("chart has %d points", pts)
	}
	if got := js[string](b, `new URLSearchParams(location.search).get("q") + " " + new URLSearchParams(location.search).get("range")`); got != good+" 1h" {
		t.Errorf("URL q, range = %q", got)
	}
	b.screenshot("explore")

	// History: recent first, once each; a query that failed is not kept.
	b.run("range 15m", chromedp.Click(chromedp.CSS(`button[data-range="15m"]`)))
	b.waitJS(10*time.Second, "15m", `new URLSearchParams(location.search).get("range") === "15m" && (document.documentElement.dataset.explore || "").startsWith("ok:")`)
	b.exec("second query", `document.getElementById("explore-query").value = "load1"; document.getElementById("explore-run").click()`)
	b.waitJS(10*time.Second, "load1", `new URLSearchParams(location.search).get("q") === "load1" && (document.documentElement.dataset.explore || "").startsWith("ok:")`)
	hist := js[[]string](b, `JSON.parse(localStorage.getItem("sysmonstm-explore-history"))`)
	if len(hist) != 2 || hist[0] != "load1" || hist[1] != good {
		t.Errorf("history = %q, want load1 then %s once", hist, good)
	}

	// Instant mode: the value of each series now, as a table.
	b.run("instant", chromedp.Click(chromedp.CSS(`button[data-mode="instant"]`)))
	b.waitJS(10*time.Second, "instant", `new URLSearchParams(location.search).get("mode") === "instant" && (document.documentElement.dataset.explore || "").startsWith("ok:") && document.querySelector("#explore-table tbody tr")`)
	if got := js[[]string](b, `[...document.querySelectorAll("#explore-table tbody tr td")].map(e => e.textContent)`); len(got) != 2 || got[0] != `load1{machine="web-1"}` {
		t.Errorf("instant load1 row = %q", got)
	}
	if n := js[int](b, `document.querySelectorAll("#explore-chart canvas").length`); n != 0 {
		t.Errorf("instant query drew %d canvases", n)
	}
	b.run("range mode", chromedp.Click(chromedp.CSS(`button[data-mode="range"]`)))
	b.waitJS(10*time.Second, "range again", `!new URLSearchParams(location.search).has("mode") && document.querySelector("#explore-chart canvas")`)

	// A bad query: Prometheus' message, no stale result.
	b.exec("bad query", `document.getElementById("explore-query").value = "sum(cpu_usage_percent"; document.getElementById("explore-run").click()`)
	b.waitJS(10*time.Second, "error shown", `!document.getElementById("explore-error").hidden`)
	msg := js[string](b, `document.getElementById("explore-error").textContent`)
	if !strings.Contains(msg, "parse error") || !strings.Contains(msg, "400") {
		t.Errorf("error = %q", msg)
	}
	if n := js[int](b, `document.querySelectorAll("#explore-table tbody tr, #explore-chart canvas").length`); n != 0 {
		t.Errorf("%d stale result elements beside the error", n)
	}
	if h := js[[]string](b, `JSON.parse(localStorage.getItem("sysmonstm-explore-history"))`); len(h) != 2 {
		t.Errorf("history after a bad query = %q, want it unchanged", h)
	}
	if got := js[[]string](b, `[...document.querySelectorAll("#explore-history button")].map(e => e.textContent)`); len(got) != 2 || got[0] != "load1" {
		t.Errorf("recent buttons = %q", got)
	}

	// Back: load1 (range, instant, range), then the first query; forward: load1.
	b.exec("back", `history.back()`)
	b.waitJS(10*time.Second, "back to load1", q+` === "load1" && (document.documentElement.dataset.explore || "").startsWith("ok:") && document.getElementById("explore-error").hidden`)
	b.exec("back", `history.back()`)
	b.waitJS(10*time.Second, "back to instant", `new URLSearchParams(location.search).get("mode") === "instant" && document.querySelector('button[data-mode="instant"]').classList.contains("on")`)
	b.exec("back twice", `history.go(-2)`)
	b.waitJS(10*time.Second, "back to first", q+` === `+jsString(good)+` && document.querySelector('button[data-range="15m"]').classList.contains("on")`)
	b.exec("forward", `history.forward()`)
	b.waitJS(10*time.Second, "forward", q+` === "load1" && (document.documentElement.dataset.explore || "").startsWith("ok:")`)

	// A machine chart's link: its query and range; the hostile mountpoint
	// is escaped in the query and shown as text.
	b.run("machine page", chromedp.Navigate(base+"/machines/web-1?range=15m"))
	b.waitJS(15*time.Second, "machine charts", `(document.documentElement.dataset.loaded || "").startsWith("15m:") && document.querySelector('.chart[data-chart="cpu-total"] a.chart-explore[href]')`)
	cpuLink := js[string](b, `document.querySelector('.chart[data-chart="cpu-total"] a.chart-explore').href`)
	if u, err := url.Parse(cpuLink); err != nil || u.Path != "/explore" || u.Query().Get("q") != good || u.Query().Get("range") != "15m" {
		t.Errorf("cpu chart link = %q", cpuLink)
	}
	fsChart := `[...document.querySelectorAll(".chart")].find(e => e.dataset.chart === ` + jsString("fs:"+hostileMount) + `)`
	b.waitJS(10*time.Second, "hostile fs chart", fsChart+` && `+fsChart+`.querySelector("a.chart-explore[href]")`)
	b.exec("open fs chart in explore", fsChart+`.querySelector("a.chart-explore").click()`)
	b.waitJS(15*time.Second, "explore from chart", `location.pathname === "/explore" && (document.documentElement.dataset.explore || "").startsWith("ok:") && document.querySelector("#explore-table tbody tr")`)
	wantQ := `filesystem_usage_percent{machine="web-1",mountpoint="/mnt/<img src=x onerror=\"window.__pwned=1\">\"\\'{a|b}"}`
	if got := js[string](b, q); got != wantQ {
		t.Errorf("query from the chart = %q, want %q", got, wantQ)
	}
	rows = js[[]string](b, `[...document.querySelectorAll("#explore-table tbody td.explore-series")].map(r => r.textContent)`)
	wantRow := `filesystem_usage_percent{device="/dev/evil", fstype="ext4", machine="web-1", mountpoint="/mnt/<img src=x onerror=\"window.__pwned=1\">\"\\'{a|b}"}`
	if len(rows) != 1 || rows[0] != wantRow {
		t.Errorf("rows = %q, want [%q]", rows, wantRow)
	}
	legend := js[string](b, `document.querySelector("#explore-chart .u-legend").textContent`)
	if !strings.Contains(legend, `onerror=\"window.__pwned=1\"`) {
		t.Errorf("legend = %q", legend)
	}
	b.waitJS(time.Second, "nothing injected", `document.querySelectorAll("main img, main svg").length === 0 && window.__pwned === undefined`)
	b.screenshot("explore-hostile")
	b.checkClean()
}
