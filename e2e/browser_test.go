package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// chromiumPath is Debian's chromium; the browser tests skip without it,
// except in CI (CI=true) where they fail.
const chromiumPath = "/usr/bin/chromium"

// browser is a headless Chromium tab plus what went wrong in it.
type browser struct {
	ctx context.Context
	t   *testing.T

	mu      sync.Mutex
	errors  []string // uncaught exceptions and console errors
	dialogs []string // alert/confirm/prompt: would mean injected script ran
}

// newBrowser starts a fresh headless Chromium (own profile) for the test; the
// whole browser lives at most limit.
func newBrowser(t *testing.T, width, height int, limit time.Duration) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing: install Debian chromium: apt-get install chromium", chromiumPath)
		}
		t.Skip("install Debian chromium: apt-get install chromium")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}
	base, cancelBase := context.WithTimeout(context.Background(), limit)
	actx, cancelAlloc := chromedp.NewExecAllocator(base, opts...)
	b := &browser{t: t}
	dialogs := make(chan struct{}, 16)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			b.record(&b.errors, "exception: "+msg)
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				b.record(&b.errors, "console.error: "+strings.Join(parts, " "))
			}
		case *page.EventJavascriptDialogOpening:
			b.record(&b.dialogs, string(ev.Type)+": "+ev.Message)
			select {
			case dialogs <- struct{}{}:
			default:
			}
		}
	}))
	b.ctx = ctx
	t.Cleanup(func() {
		if t.Failed() {
			b.mu.Lock()
			t.Logf("page errors: %q", b.errors)
			b.mu.Unlock()
		}
		cancelCtx()
		cancelAlloc()
		cancelBase()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-dialogs:
				_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
			}
		}
	}()
	return b
}

func (b *browser) record(list *[]string, s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	*list = append(*list, s)
}

// run runs chromedp actions and fails the test on error.
func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// js evaluates a JS expression (awaiting a promise) and decodes its value.
func js[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("eval %s: %v", truncate(expr), err)
	}
	return v
}

// exec runs a JS statement for its effect.
func (b *browser) exec(what, expr string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[*runtime.RemoteObject](expr)); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// waitJS polls a JS expression until it is true.
func (b *browser) waitJS(timeout time.Duration, what, expr string) {
	b.t.Helper()
	testutil.WaitFor(b.t, timeout, what, func() error {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s is false", expr)
		}
		return nil
	})
}

// screenshot saves the viewport as e2e/artifacts/name.png.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	buf, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll("artifacts", 0o755); err != nil {
		b.t.Fatal(err)
	}
	p := filepath.Join("artifacts", name+".png")
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", p)
}

// checkClean fails the test on page errors or opened dialogs.
func (b *browser) checkClean() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.errors {
		b.t.Errorf("page error: %s", e)
	}
	for _, d := range b.dialogs {
		b.t.Errorf("page opened a dialog (injected script ran?): %s", d)
	}
}

// rowIDs is a JS expression: the ids of the overview's rows in view.
const rowIDs = `[...document.querySelectorAll('.vlist a.row:not([hidden]) .id')].map(e => e.textContent)`

func waitOnline(t *testing.T, hub *hubProc, ids ...string) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, "machines online", func() error {
		for _, id := range ids {
			var m machine
			if code := getJSON(t, "http://"+hub.http+"/api/machines/"+urlPathEscape(id), &m); code != 200 || !m.Online {
				return fmt.Errorf("%s: status %d online %v", id, code, m.Online)
			}
			if _, ok := m.value("cpu_usage_percent", "cpu", "total"); !ok {
				return fmt.Errorf("%s: no cpu value yet", id)
			}
		}
		return nil
	})
}

func TestBrowserDashboard(t *testing.T) {
	t.Parallel()
	b := newBrowser(t, 1400, 900, 90*time.Second)
	hub := startHub(t, t.TempDir(), "", "")
	startAgent(t, hub, "web-1", "--labels", "env=prod,role=web")
	startAgent(t, hub, "db-1", "--labels", "env=staging,role=db")
	waitOnline(t, hub, "web-1", "db-1")
	base := "http://" + hub.http

	// Overview: both machines, values moving.
	b.run("open overview", chromedp.Navigate(base+"/"))
	b.waitJS(10*time.Second, "both rows", rowIDs+`.sort().join(",") === "db-1,web-1"`)
	b.waitJS(5*time.Second, "connected", `document.documentElement.dataset.conn === "open"`)
	b.waitJS(5*time.Second, "live values", `document.querySelector('.vlist a.row[data-id="web-1"]').dataset.ts`)
	ts1 := js[string](b, `document.querySelector('.vlist a.row[data-id="web-1"]').dataset.ts`)
	b.waitJS(5*time.Second, "values change", `document.querySelector('.vlist a.row[data-id="web-1"]').dataset.ts !== "`+ts1+`"`)
	cells := js[[]string](b, `['.c-cpu .v', '.c-mem .v', '.chip'].flatMap(s => [...document.querySelectorAll('.vlist a.row[data-id="web-1"] ' + s)].map(e => e.textContent))`)
	if len(cells) != 4 || !strings.HasSuffix(cells[0], "%") || !strings.HasSuffix(cells[1], "%") || cells[2] != "env=prod" || cells[3] != "role=web" {
		t.Errorf("web-1 cells = %q, want cpu %%, mem %%, env=prod, role=web", cells)
	}
	counts := js[string](b, `[...document.querySelectorAll('.count')].map(e => e.textContent).join(" | ")`)
	if !strings.Contains(counts, "2machines") || !strings.Contains(counts, "2online") || !strings.Contains(counts, "0offline") {
		t.Errorf("counts = %q", counts)
	}
	b.waitJS(5*time.Second, "sparkline", `document.querySelector('.vlist a.row[data-id="web-1"] canvas').width > 0`)
	b.screenshot("overview")

	// Group by label.
	b.exec("group by env", selectJS("f-group", "env"))
	b.waitJS(5*time.Second, "groups", `[...document.querySelectorAll('.vlist .row.group:not([hidden]) .glabel')].map(e => e.textContent).join("|") === "▾ env = prod|▾ env = staging"`)
	b.screenshot("overview-grouped")
	b.exec("ungroup", selectJS("f-group", ""))
	b.waitJS(5*time.Second, "ungrouped", `document.querySelectorAll('.vlist > .row:not([hidden])').length === 2 && [...document.querySelectorAll('.vlist > [hidden]')].every(e => getComputedStyle(e).display === "none")`)

	// Dark theme and a phone-sized viewport.
	b.run("dark theme", chromedp.Click(chromedp.ID("theme")))
	b.waitJS(2*time.Second, "dark", `document.documentElement.dataset.theme === "dark"`)
	time.Sleep(300 * time.Millisecond)
	b.screenshot("overview-dark")
	b.run("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	b.waitJS(5*time.Second, "phone rows", `(() => { const r = [...document.querySelectorAll('.vlist a.row:not([hidden])')].map(e => e.getBoundingClientRect()).sort((a, b) => a.top - b.top); return r.length === 2 && r[0].height > 60 && r[1].top >= r[0].bottom - 1; })()`)
	time.Sleep(300 * time.Millisecond)
	b.screenshot("overview-phone")
	b.run("desktop", chromedp.EmulateViewport(1400, 900), chromedp.Click(chromedp.ID("theme")))

	// Search narrows to one machine; Enter opens it.
	b.run("search", chromedp.Focus(chromedp.ID("search")), typeInto(chromedp.ID("search"), "role=db"))
	b.waitJS(5*time.Second, "filtered", rowIDs+`.join(",") === "db-1"`)
	b.run("enter", typeInto(chromedp.ID("search"), "\r"))
	b.waitJS(10*time.Second, "machine page", `location.pathname === "/machines/db-1" && document.documentElement.dataset.loaded && document.documentElement.dataset.loaded.startsWith("live:")`)

	// Machine page: charts for every core section, live points appended.
	sections := js[[]string](b, `[...document.querySelectorAll('.section')].map(e => e.dataset.section)`)
	for _, want := range []string{"cpu", "memory", "load", "filesystems", "network"} {
		if !strings.Contains(strings.Join(sections, ","), want) {
			t.Errorf("sections = %q, missing %s", sections, want)
		}
	}
	b.waitJS(5*time.Second, "charts drawn", `document.querySelectorAll('.chart .uplot canvas').length >= 5`)
	title := js[string](b, `document.getElementById("machine-id").textContent`)
	if title != "db-1" {
		t.Errorf("title = %q", title)
	}
	time.Sleep(1500 * time.Millisecond) // a few live points
	b.screenshot("machine-live")

	// Ranges: each loads from the history API.
	for _, r := range []string{"15m", "1h", "24h", "7d"} {
		b.run("range "+r, chromedp.Click(chromedp.CSS(`button[data-range="`+r+`"]`)))
		b.waitJS(10*time.Second, "range "+r, `(document.documentElement.dataset.loaded || "").startsWith("`+r+`:") && !document.querySelector('.sections.loading')`)
		info := js[string](b, `document.querySelector('.rangeinfo').textContent`)
		if strings.Contains(info, "error") {
			t.Errorf("range %s: %s", r, info)
		}
		q := js[string](b, `location.search`)
		if q != "?range="+r {
			t.Errorf("range %s: URL query %q", r, q)
		}
	}
	b.run("range 1h", chromedp.Click(chromedp.CSS(`button[data-range="1h"]`)))
	b.waitJS(10*time.Second, "range 1h", `(document.documentElement.dataset.loaded || "").startsWith("1h:") && !document.querySelector('.sections.loading')`)
	b.screenshot("machine-1h")

	// Drag across a chart: every chart zooms to the selection (a custom
	// range, fetched again); "Zoom out" goes back.
	rect := js[[]float64](b, `(() => { window.scrollTo(0, 0); const r = document.querySelector('.chart .u-over').getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()`)
	x0, x1, y := rect[0]+rect[2]*0.5, rect[0]+rect[2]*0.9, rect[1]+rect[3]/2
	b.run("drag to zoom", mouse(input.DispatchMouseEventTypeMouseMoved, x0, y, 0), mouse(input.DispatchMouseEventTypeMousePressed, x0, y, 1),
		mouse(input.DispatchMouseEventTypeMouseMoved, (x0+x1)/2, y, 1), mouse(input.DispatchMouseEventTypeMouseMoved, x1, y, 1),
		mouse(input.DispatchMouseEventTypeMouseReleased, x1, y, 1))
	b.waitJS(10*time.Second, "zoomed", `(document.documentElement.dataset.loaded || "").startsWith("custom:") && !document.getElementById("zoom-out").hidden`)
	if q := js[string](b, `location.search`); !strings.HasPrefix(q, "?range=custom&from=") {
		t.Errorf("zoomed URL query %q", q)
	}
	b.run("zoom out", chromedp.Click(chromedp.ID("zoom-out")))
	b.waitJS(10*time.Second, "zoomed out", `(document.documentElement.dataset.loaded || "").startsWith("1h:")`)
	b.run("dark theme", chromedp.Click(chromedp.ID("theme")))
	b.waitJS(2*time.Second, "dark", `document.documentElement.dataset.theme === "dark"`)
	time.Sleep(300 * time.Millisecond) // charts rebuild with the theme's colours
	b.screenshot("machine-1h-dark")
	b.run("light theme", chromedp.Click(chromedp.ID("theme")))

	// Export link covers the visible range.
	exp := js[string](b, `(() => { const a = document.querySelector('[data-export="csv"]'); a.addEventListener('click', e => e.preventDefault(), {once: true}); a.click(); return a.href; })()`)
	if !strings.Contains(exp, "/api/export?machine=db-1&from=") || !strings.Contains(exp, "format=csv") {
		t.Errorf("export href = %q", exp)
	}
	head := js[string](b, `fetch(document.querySelector('[data-export="csv"]').href).then(r => r.text()).then(t => t.split("\n")[0])`)
	if head != "timestamp,machine,metric,labels,value" {
		t.Errorf("export first line = %q", head)
	}
	b.checkClean()
}

// TestBrowserHostileStrings: a machine whose id and labels are markup,
// quotes and script-like text is shown literally and runs nothing.
func TestBrowserHostileStrings(t *testing.T) {
	t.Parallel()
	b := newBrowser(t, 1400, 900, 90*time.Second)
	hub := startHub(t, t.TempDir(), "", "")
	const id = `<img src=x onerror="window.__pwned=1;alert(1)">'"&amp;<script>window.__pwned=2</script>`
	const labels = `note=<b>bold</b> <svg onload=window.__pwned=3>,q="'><iframe src=javascript:alert(4)>`
	startAgent(t, hub, id, "--labels", labels)
	startAgent(t, hub, "plain-1")
	waitOnline(t, hub, id, "plain-1")

	b.run("open overview", chromedp.Navigate("http://"+hub.http+"/"))
	b.waitJS(10*time.Second, "rows", rowIDs+`.length === 2`)
	ids := js[[]string](b, rowIDs)
	if !contains(ids, id) {
		t.Errorf("row ids = %q, want the literal %q", ids, id)
	}
	chips := js[[]string](b, `[...document.querySelectorAll('.vlist .chip')].map(e => e.textContent)`)
	if !contains(chips, `note=<b>bold</b> <svg onload=window.__pwned=3>`) || !contains(chips, `q="'><iframe src=javascript:alert(4)>`) {
		t.Errorf("label chips = %q", chips)
	}
	injected := `document.querySelectorAll('main img, main svg, main b, main iframe, main script').length === 0 && window.__pwned === undefined`
	b.waitJS(time.Second, "nothing injected on the overview", injected)
	b.run("search", typeInto(chromedp.ID("search"), "<svg"))
	b.waitJS(5*time.Second, "filtered", rowIDs+`.length === 1`)
	b.screenshot("hostile-overview")

	// The machine page, reached by clicking the row.
	b.run("open machine", chromedp.Click(chromedp.CSS(`.vlist a.row:not([hidden])`)))
	b.waitJS(10*time.Second, "machine page", `(document.documentElement.dataset.loaded || "").startsWith("live:")`)
	h1 := js[string](b, `document.getElementById("machine-id").textContent`)
	path := js[string](b, `decodeURIComponent(location.pathname)`)
	if h1 != id || path != "/machines/"+id {
		t.Errorf("machine page: title %q path %q, want %q", h1, path, id)
	}
	b.waitJS(time.Second, "nothing injected on the machine page", injected)
	title := js[string](b, `document.title`)
	if !strings.HasPrefix(title, id) {
		t.Errorf("document.title = %q", title)
	}
	b.screenshot("hostile-machine")
	time.Sleep(500 * time.Millisecond)
	b.checkClean()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// urlPathEscape escapes a machine id for a URL path segment.
func urlPathEscape(s string) string {
	var sb strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			sb.WriteByte(c)
		} else {
			fmt.Fprintf(&sb, "%%%02X", c)
		}
	}
	return sb.String()
}

// selectJS is a JS statement choosing value in the select with the id.
func selectJS(id, value string) string {
	return fmt.Sprintf(`(() => { const s = document.getElementById(%q); s.value = %q; s.dispatchEvent(new Event("change")); })()`, id, value)
}

// mouse dispatches one mouse event at (x, y) CSS pixels; buttons 1 = left
// button held.
func mouse(typ input.DispatchMouseEventType, x, y float64, buttons int64) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		p := input.DispatchMouseEventParams{Type: typ, X: x, Y: y, Buttons: buttons}
		if typ != input.DispatchMouseEventTypeMouseMoved {
			p.Button, p.ClickCount = input.MouseButtonLeft, 1
		}
		_, err := cdp.Call(ctx, t, input.DispatchMouseEvent, p)
		return chromedp.Void{}, err
	}
}

// typeInto focuses sel and types text there, as chromedp.SendKeys does
// for a text input. SendKeys itself reads the node's attributes before it
// takes the node's lock (chromedp v0.23.0, query.go:1292) while the
// DOM-event goroutine may rewrite them (an input whose attributes the page
// toggles, as the explore autocomplete does): a data race the race
// detector reports, which fails every test running beside it.
func typeInto[S chromedp.Selectable](sel S, text string, opts ...chromedp.QueryOption) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.Focus(sel, opts...), chromedp.KeyEvent(text))
}
