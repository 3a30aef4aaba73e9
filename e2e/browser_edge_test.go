package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// edgeCardIDs is a JS expression: the machine ids of the visible cards.
const edgeCardIDs = `[...document.querySelectorAll('#cards .card:not([hidden]) .id')].map(e => e.textContent)`

// TestBrowserEdgeHostileStrings: the edge's public page shows machines whose
// ids and labels are markup, quotes, bidi overrides and control characters
// as literal text, runs none of it, updates live, and says so when the hub
// goes away.
func TestBrowserEdgeHostileStrings(t *testing.T) {
	t.Parallel()
	b := newBrowser(t, 1280, 900, 90*time.Second)
	e := startEdgeRelay(t, "")
	hub := startHub(t, t.TempDir(), "", "", edgeHubFlags(e)...)
	const id = `<img src=x onerror="window.__pwned=1;alert(1)">'"&amp;<script>window.__pwned=2</script>`
	const rtl = "\u202egnp.exe\u202c-host"
	const labels = "note=<b>bold</b> <svg onload=window.__pwned=3>,q=\"'><iframe src=javascript:alert(4)>,ctl=a\u0007b\u001bc"
	startAgent(t, hub, id, "--labels", labels)
	startAgent(t, hub, rtl, "--labels", "dir=\u202eevil")
	startAgent(t, hub, "plain-1")
	waitOnline(t, hub, id, rtl, "plain-1")

	b.run("open the edge page", chromedp.Navigate("http://"+e.http+"/"))
	b.waitJS(15*time.Second, "three cards", edgeCardIDs+`.length === 3`)
	b.waitJS(5*time.Second, "connected", `document.documentElement.dataset.conn === "open"`)
	// Markup shows as text; control and bidi characters show as visible
	// symbols, so a right-to-left override cannot make "gnp.exe" read
	// "exe.png".
	ids := js[[]string](b, edgeCardIDs)
	for _, want := range []string{id, "[U+202E]gnp.exe[U+202C]-host", "plain-1"} {
		if !contains(ids, want) {
			t.Errorf("card ids %q lack %q", ids, want)
		}
	}
	if raw := js[[]string](b, `[...document.querySelectorAll('#cards .card')].map(e => e.dataset.id)`); !contains(raw, rtl) || !contains(raw, id) {
		t.Errorf("data-id %q lack the raw ids", raw)
	}
	chips := js[[]string](b, `[...document.querySelectorAll('#cards .chip')].map(e => e.textContent)`)
	for _, want := range []string{"note=<b>bold</b> <svg onload=window.__pwned=3>", `q="'><iframe src=javascript:alert(4)>`, "ctl=a[U+0007]b[U+001B]c", "dir=[U+202E]evil"} {
		if !contains(chips, want) {
			t.Errorf("chips %q lack %q", chips, want)
		}
	}
	injected := `document.querySelectorAll('body img, body svg, body b, body iframe, body script:not([src="/ui/edge.js"])').length === 0 && window.__pwned === undefined`
	b.waitJS(time.Second, "nothing injected", injected)

	// Live: values appear and move.
	card := `[...document.querySelectorAll('#cards .card')].find(c => c.dataset.id === "plain-1")`
	b.waitJS(10*time.Second, "values", card+`.querySelector('.vals .v').textContent.endsWith("%")`)
	ts1 := js[string](b, card+`.dataset.ts`)
	b.waitJS(10*time.Second, "live update", card+`.dataset.ts !== "`+ts1+`"`)
	b.waitJS(5*time.Second, "sparkline drawn", card+`.querySelector('canvas').width > 0`)
	ts2 := js[string](b, card+`.dataset.ts`)
	b.waitJS(10*time.Second, "a few more points", card+`.dataset.ts !== "`+ts2+`"`)
	time.Sleep(time.Second)
	counts := js[string](b, `document.getElementById("counts").textContent`)
	if counts != "3 machines · 3 online · 0 offline" {
		t.Errorf("counts %q", counts)
	}
	b.screenshot("edge-overview")

	// The filter matches ids and labels as text.
	b.run("filter", typeInto(chromedp.ID("search"), "<svg"))
	b.waitJS(5*time.Second, "filtered", edgeCardIDs+`.length === 1 && `+edgeCardIDs+`[0] === `+jsString(id))
	b.exec("clear filter", `(() => { const s = document.getElementById("search"); s.value = ""; s.dispatchEvent(new Event("input")); })()`)
	b.waitJS(5*time.Second, "unfiltered", edgeCardIDs+`.length === 3`)

	// The hub goes away: the page says the data is stale and nothing is
	// shown online.
	hub.kill(syscall.SIGKILL)
	b.waitJS(15*time.Second, "stale banner", `!document.getElementById("stale").hidden && document.querySelectorAll('#cards .card.off').length === 3`)
	if c := js[string](b, `document.getElementById("counts").textContent`); !strings.Contains(c, "0 online") {
		t.Errorf("counts without a hub: %q", c)
	}
	b.screenshot("edge-hub-gone")
	b.waitJS(time.Second, "still nothing injected", injected)
	b.checkClean()
}
