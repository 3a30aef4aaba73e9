package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// alertsEvilID is a machine id that is markup: the alert pages must show it
// as text and run nothing.
const alertsEvilID = `<img src=x onerror=window.__x=1>`

// TestBrowserAlerts drives the alerting UI against a real hub and agents:
// log in as admin through the login page, create a rule in the rule editor
// (its live preview lists the machines), see the alerts fire on /alerts and
// in the header badge, acknowledge one, filter, delete a rule and find its
// alerts in the history, and check each step through the API. A machine
// whose id is markup joins later: its alert appears live, is silenced
// through the page, and its id stays text.
func TestBrowserAlerts(t *testing.T) {
	t.Parallel()
	const password = "alerts-e2e-Pa55word"
	setEnv(t, "SYSMONSTM_ADMIN_PASSWORD", password) // the hub's first start creates admin with it
	b := newBrowser(t, 1400, 900, 180*time.Second)
	hub := startHub(t, t.TempDir(), "", "")
	startAgent(t, hub, "web-1", "--labels", "env=prod")
	startAgent(t, hub, "db-1", "--labels", "env=prod")
	waitOnline(t, hub, "web-1", "db-1")
	base := "http://" + hub.http
	token := alertsLogin(t, hub, "admin", password)

	alertsBrowserLogin(b, base, "admin", password, "/rules")

	// The rule editor, with its live preview.
	b.waitJS(10*time.Second, "admin sees New rule", `document.getElementById("new-rule") && document.querySelector('#rules-table tbody tr')`)
	b.run("new rule", chromedp.Click(chromedp.ID("new-rule")))
	b.waitJS(5*time.Second, "editor", `document.getElementById("rule-form")`)
	b.exec("clear defaults", `for (const id of ["rule-threshold", "rule-for"]) document.getElementById(id).value = ""`)
	b.run("fill the rule",
		typeInto(chromedp.ID("rule-name"), "Any CPU"),
		typeInto(chromedp.ID("rule-metric"), "cpu_usage_percent"),
		typeInto(chromedp.ID("rule-matchers"), "cpu=total"),
		typeInto(chromedp.ID("rule-threshold"), "-1"),
		typeInto(chromedp.ID("rule-for"), "0s"))
	b.exec("severity critical", `(() => { const s = document.getElementById("rule-severity"); s.value = "critical"; s.dispatchEvent(new Event("change", {bubbles: true})); })()`)
	previewRows := `[...document.querySelectorAll('#rule-preview-table:not([hidden]) tbody tr')].map(tr => tr.children[0].textContent + "|" + tr.children[3].textContent).sort().join(",")`
	b.waitJS(15*time.Second, "preview lists both machines", previewRows+` === "db-1|would fire,web-1|would fire"`)
	if st := js[string](b, `document.querySelector(".al-pv-status").textContent`); !strings.HasPrefix(st, "2 machines") || !strings.Contains(st, "2 would fire") {
		t.Errorf("preview status = %q", st)
	}
	// A hint for a bad field, then the fix.
	b.run("bad For", typeInto(chromedp.ID("rule-for"), "x"))
	b.waitJS(5*time.Second, "For hint", `document.getElementById("rule-for").getAttribute("aria-invalid") === "true" && document.querySelector(".al-pv-status").textContent.startsWith("Fix the form")`)
	b.exec("fix For", `(() => { const f = document.getElementById("rule-for"); f.value = "0s"; f.dispatchEvent(new Event("input", {bubbles: true})); })()`)
	b.waitJS(5*time.Second, "preview back", previewRows+` === "db-1|would fire,web-1|would fire"`)
	b.screenshot("alerts-rule-editor")
	b.run("save", chromedp.Click(chromedp.ID("rule-save")))
	b.waitJS(10*time.Second, "rule listed", `[...document.querySelectorAll('#rules-table tbody tr .name')].some(e => e.textContent === "Any CPU") && !document.getElementById("rule-form")`)

	var rules []alertsRule
	alertsAPI(t, hub, token, http.MethodGet, "/api/rules", nil, &rules)
	var cpuRule string
	for _, r := range rules {
		if r.Name == "Any CPU" {
			cpuRule = r.ID
			if r.Metric != "cpu_usage_percent" || r.Matchers["cpu"] != "total" || r.Op != ">" || r.Threshold != -1 || r.For != "0s" || r.Severity != "critical" || !r.Enabled {
				t.Errorf("saved rule = %+v", r)
			}
		}
	}
	if cpuRule == "" {
		t.Fatalf("rule not saved: %+v", rules)
	}
	// A second rule, a warning, through the API.
	var memRule alertsRule
	alertsAPI(t, hub, token, http.MethodPost, "/api/rules", map[string]any{
		"name": "Memory in use", "metric": "memory_usage_percent", "machines": []string{"web-1", "db-1"},
		"op": ">", "threshold": -1, "for": "0s", "severity": "warning",
	}, &memRule)

	// The alerts page: all four fire; the header badge agrees with the API.
	b.run("open alerts", chromedp.Navigate(base+"/alerts"))
	rowsOf := func(rule string) string {
		return `[...document.querySelectorAll('#alerts-table tbody tr.al-row')].filter(tr => tr.children[1].querySelector('a').textContent === ` + alertsJSString(rule) + `)`
	}
	machinesOf := func(rule string) string {
		return rowsOf(rule) + `.map(tr => tr.querySelector('.al-machine').textContent).sort().join(",")`
	}
	b.waitJS(30*time.Second, "CPU alerts firing", machinesOf("Any CPU")+` === "db-1,web-1"`)
	b.waitJS(30*time.Second, "memory alerts firing", machinesOf("Memory in use")+` === "db-1,web-1"`)
	testutil.WaitFor(t, 10*time.Second, "badge matches the firing alerts", func() error {
		var firing []alertsAlert
		alertsAPI(t, hub, token, http.MethodGet, "/api/alerts?state=firing", nil, &firing)
		crit := false
		for _, a := range firing {
			crit = crit || a.Severity == "critical"
		}
		got := js[[]string](b, `(() => { const e = document.getElementById("alert-badge"); return [e.textContent, String(e.hidden), String(e.classList.contains("warn"))]; })()`)
		want := []string{fmt.Sprint(len(firing)), "false", fmt.Sprint(!crit)}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			return fmt.Errorf("badge [text hidden warn] = %q, want %q", got, want)
		}
		return nil
	})

	// Ack web-1's CPU alert through the page.
	row := func(rule, machine string) string {
		return rowsOf(rule) + `.find(tr => tr.querySelector('.al-machine').textContent === ` + alertsJSString(machine) + `)`
	}
	alertID := js[string](b, row("Any CPU", "web-1")+`.dataset.id`)
	b.exec("click Ack", row("Any CPU", "web-1")+`.querySelector('button[data-act="ack"]').click()`)
	b.waitJS(5*time.Second, "ack form", `document.querySelector('tr.al-formrow[data-kind="ack"] input')`)
	b.run("comment and confirm",
		typeInto(chromedp.CSS(`tr.al-formrow[data-kind="ack"] input`), "looking into it"),
		chromedp.Click(chromedp.CSS(`tr.al-formrow[data-kind="ack"] button[type="submit"]`)))
	b.waitJS(10*time.Second, "acknowledged by admin", row("Any CPU", "web-1")+`.querySelector('.al-ack').textContent.includes("acknowledged by admin")`)
	if c := js[string](b, row("Any CPU", "web-1")+`.querySelector('.al-ack').textContent`); !strings.Contains(c, "looking into it") {
		t.Errorf("ack cell = %q, want the comment", c)
	}
	var acked alertsAlert
	alertsAPI(t, hub, token, http.MethodGet, "/api/alerts/"+url.PathEscape(alertID), nil, &acked)
	if !acked.Acknowledged || acked.Ack == nil || acked.Ack.By != "admin" || acked.Ack.Comment != "looking into it" || acked.Machine != "web-1" || acked.State != "firing" {
		t.Errorf("acknowledged alert via API = %+v (ack %+v)", acked, acked.Ack)
	}
	var firing []alertsAlert
	alertsAPI(t, hub, token, http.MethodGet, "/api/alerts?state=firing&rule="+cpuRule, nil, &firing)
	for _, a := range firing {
		if a.ID != alertID && a.Acknowledged {
			t.Errorf("alert %s on %s acknowledged too", a.ID, a.Machine)
		}
	}
	b.screenshot("alerts")

	// The severity filter.
	b.exec("warnings only", `(() => { const s = document.getElementById("f-severity"); s.value = "warning"; s.dispatchEvent(new Event("change")); })()`)
	b.waitJS(5*time.Second, "only warnings", `(() => { const s = [...document.querySelectorAll('#alerts-table tbody tr.al-row .sev')].map(e => e.textContent); return s.length >= 2 && s.every(x => x === "warning"); })() && location.search === "?severity=warning"`)
	b.exec("all severities", `(() => { const s = document.getElementById("f-severity"); s.value = ""; s.dispatchEvent(new Event("change")); })()`)

	// A machine whose id is markup joins: its alert appears live, as text.
	startAgent(t, hub, alertsEvilID)
	b.waitJS(30*time.Second, "hostile machine's alert, live", machinesOf("Any CPU")+` === `+alertsJSString(alertsEvilID+",db-1,web-1")) // JS sorts '<' first
	if got := js[[]string](b, rowsOf("Any CPU")+`.map(tr => tr.querySelector('.al-machine').textContent)`); !contains(got, alertsEvilID) {
		t.Errorf("alert machines = %q, want the literal %q", got, alertsEvilID)
	}
	// Silence it through the page's form.
	b.exec("click Silence", row("Any CPU", alertsEvilID)+`.querySelector('button[data-act="silence"]').click()`)
	b.waitJS(5*time.Second, "silence form", `document.querySelector('tr.al-formrow[data-kind="silence"] form')`)
	if what := js[string](b, `document.querySelector('tr.al-formrow[data-kind="silence"] .al-what').textContent`); what != "Silence Any CPU on "+alertsEvilID {
		t.Errorf("silence form says %q", what)
	}
	b.exec("1 h", `document.querySelector('tr.al-formrow[data-kind="silence"] input[value="1h"]').click()`)
	b.run("silence comment and create",
		typeInto(chromedp.CSS(`tr.al-formrow[data-kind="silence"] input[type="text"]`), "e2e"),
		chromedp.Click(chromedp.CSS(`tr.al-formrow[data-kind="silence"] button[type="submit"]`)))
	b.waitJS(10*time.Second, "silence created", `!document.querySelector('tr.al-formrow') && document.querySelector('.al-flash').textContent.startsWith("Silenced")`)
	var silences []struct {
		Matchers struct {
			RuleID  string `json:"rule_id"`
			Machine string `json:"machine"`
		} `json:"matchers"`
		StartsAt time.Time `json:"starts_at"`
		EndsAt   time.Time `json:"ends_at"`
		Comment  string    `json:"comment"`
		Active   bool      `json:"active"`
	}
	alertsAPI(t, hub, token, http.MethodGet, "/api/silences", nil, &silences)
	if len(silences) != 1 || silences[0].Matchers.Machine != alertsEvilID || silences[0].Matchers.RuleID != cpuRule ||
		silences[0].Comment != "e2e" || !silences[0].Active || absDuration(silences[0].EndsAt.Sub(silences[0].StartsAt)-time.Hour) > time.Minute {
		t.Errorf("silences via API = %+v", silences)
	}
	b.waitJS(15*time.Second, "alert shown silenced", row("Any CPU", alertsEvilID)+`.querySelector('.al-ack .silenced')`)
	injected := `window.__x === undefined && document.querySelectorAll('main img, main script').length === 0`
	b.waitJS(time.Second, "nothing injected on /alerts", injected)
	b.screenshot("alerts-hostile")

	// The machine page lists web-1's firing alerts.
	b.run("machine page", chromedp.Navigate(base+"/machines/web-1"))
	b.waitJS(10*time.Second, "firing strip", `(() => { const s = document.getElementById("machine-alerts"); return s && !s.hidden && [...s.querySelectorAll("li a")].map(a => a.textContent).sort().join(",").includes("Any CPU,Memory in use"); })()`)

	// Delete the memory rule on /rules (Delete asks again); its alerts go
	// to the history.
	b.run("rules", chromedp.Navigate(base+"/rules"))
	del := `[...document.querySelectorAll('#rules-table tbody tr')].find(tr => tr.dataset.id === ` + alertsJSString(memRule.ID) + `).querySelector('button[data-act="delete"]')`
	b.waitJS(10*time.Second, "rules table", del)
	b.exec("delete", del+`.click()`)
	b.waitJS(2*time.Second, "asks again", del+`.textContent === "Really delete?"`)
	b.exec("confirm delete", del+`.click()`)
	b.waitJS(10*time.Second, "rule gone", `![...document.querySelectorAll('#rules-table tbody tr')].some(tr => tr.dataset.id === `+alertsJSString(memRule.ID)+`)`)
	if code := alertsStatus(t, hub, token, "/api/rules/"+url.PathEscape(memRule.ID)); code != http.StatusNotFound {
		t.Errorf("deleted rule: GET status %d, want 404", code)
	}
	b.run("history", chromedp.Navigate(base+"/alerts?tab=history"))
	b.waitJS(15*time.Second, "resolved memory alerts in the history", machinesOf("Memory in use")+` === "db-1,web-1" && document.getElementById("tab-history").getAttribute("aria-selected") === "true"`)
	b.waitJS(time.Second, "nothing injected in the history", injected)
	b.checkClean()
}

// checkNotifierForms checks the open new-notifier form offers every type
// GET /api/notifier-types lists, and that choosing one shows exactly that
// type's fields, labelled as the API says; it leaves the first type chosen.
func checkNotifierForms(t *testing.T, b *browser, hub *hubProc, token string) {
	t.Helper()
	var types []struct {
		Type   string `json:"type"`
		Label  string `json:"label"`
		Fields []struct {
			Name  string `json:"name"`
			Label string `json:"label"`
		} `json:"fields"`
	}
	alertsAPI(t, hub, token, http.MethodGet, "/api/notifier-types", nil, &types)
	if len(types) == 0 {
		t.Fatal("GET /api/notifier-types listed no type")
	}
	var want []string
	for _, ty := range types {
		want = append(want, ty.Type+"="+ty.Label)
	}
	offered := js[[]string](b, `[...document.querySelectorAll("#n-type option")].map(o => o.value + "=" + o.textContent)`)
	if !slices.Equal(offered, want) {
		t.Fatalf("form offers types %q, the API lists %q", offered, want)
	}
	choose := func(typ string) []string {
		return js[[]string](b, `(() => {
			const s = document.getElementById("n-type");
			s.value = `+strconv.Quote(typ)+`;
			s.dispatchEvent(new Event("change", { bubbles: true }));
			return [...document.querySelectorAll("#notifier-form .al-grid > .al-field")].filter(e => !e.hidden)
				.map(e => [e.querySelector("input, select, textarea"), e.querySelector("label")])
				.filter(([c]) => c && c.id && c.id !== "n-name" && c.id !== "n-type")
				.map(([c, l]) => c.id + "=" + l.textContent.trim());
		})()`)
	}
	for _, ty := range types {
		var fields []string
		for _, f := range ty.Fields {
			fields = append(fields, "n-"+strings.ReplaceAll(f.Name, "_", "-")+"="+f.Label)
		}
		if got := choose(ty.Type); !slices.Equal(got, fields) {
			t.Errorf("type %s: the form shows %q, want %q", ty.Type, got, fields)
		}
	}
	choose(types[0].Type)
}

// TestBrowserAlertPages covers the other alerting pages against a real hub:
// read-only views for anonymous users and viewers, the server's validation
// message beside the rule field it names, a webhook notifier created in the
// form and tested against a real HTTP server (its URL stays secret and is
// kept on edit), and a silence created and expired on /silences.
func TestBrowserAlertPages(t *testing.T) {
	t.Parallel()
	const password = "alert-pages-Pa55word"
	setEnv(t, "SYSMONSTM_ADMIN_PASSWORD", password)
	b := newBrowser(t, 1400, 900, 150*time.Second)
	hub := startHub(t, t.TempDir(), "", "")
	startAgent(t, hub, "web-1")
	waitOnline(t, hub, "web-1")
	base := "http://" + hub.http
	token := alertsLogin(t, hub, "admin", password)

	hooks := make(chan string, 16) // path?query of each POST the webhook got
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if r.Method == http.MethodPost && json.Valid(body) {
			hooks <- r.URL.RequestURI()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)

	// Anonymous (loopback): read-only, with the hint.
	readOnly := `document.querySelector(".al-hint") && document.querySelector(".al-hint").textContent.includes("log in as an admin") && !document.getElementById("new-rule") && [...document.querySelectorAll("#rules-table .al-toggle")].every(x => x.disabled) && document.querySelectorAll('#rules-table button[data-act="delete"]').length === 0`
	b.run("rules, anonymous", chromedp.Navigate(base+"/rules"))
	b.waitJS(10*time.Second, "read-only rules", `document.querySelector("#rules-table tbody tr") && `+readOnly)
	b.run("notifiers, anonymous", chromedp.Navigate(base+"/notifiers"))
	b.waitJS(10*time.Second, "read-only notifiers", `document.querySelector(".al-hint") && !document.getElementById("new-notifier")`)

	// A viewer sees the same.
	alertsAPI(t, hub, token, http.MethodPost, "/api/users", map[string]string{"username": "viewer1", "password": "viewer-Pa55word", "role": "viewer"}, nil)
	alertsBrowserLogin(b, base, "viewer1", "viewer-Pa55word", "/rules")
	b.waitJS(10*time.Second, "viewer: read-only rules", `document.querySelector("#rules-table tbody tr") && `+readOnly)
	b.run("log out", chromedp.Click(chromedp.CSS(`#session button`)))
	b.waitJS(10*time.Second, "logged out", `location.pathname === "/login"`)

	// The server's 400 names the field: shown beside it.
	alertsBrowserLogin(b, base, "admin", password, "/rules?new=1")
	b.waitJS(10*time.Second, "editor", `document.getElementById("rule-form")`)
	b.exec("clear threshold", `document.getElementById("rule-threshold").value = ""`)
	b.run("fill a rule the hub refuses",
		typeInto(chromedp.ID("rule-name"), "Bad clear"),
		typeInto(chromedp.ID("rule-metric"), "cpu_usage_percent"),
		typeInto(chromedp.ID("rule-threshold"), "90"),
		typeInto(chromedp.ID("rule-clear"), "95"))
	b.run("save", chromedp.Click(chromedp.ID("rule-save")))
	b.waitJS(10*time.Second, "server error beside Resolve at", `document.getElementById("rule-error").textContent.startsWith("clear: ") && document.getElementById("rule-clear").getAttribute("aria-invalid") === "true" && document.getElementById("rule-clear-msg").textContent.startsWith("clear: ")`)
	var rules []alertsRule
	alertsAPI(t, hub, token, http.MethodGet, "/api/rules", nil, &rules)
	for _, r := range rules {
		if r.Name == "Bad clear" {
			t.Errorf("refused rule was saved: %+v", r)
		}
	}

	// A webhook notifier: create, send a test to the real server.
	hookURL := srv.URL + "/hook?token=s3cret"
	b.run("notifiers", chromedp.Navigate(base+"/notifiers"))
	b.waitJS(10*time.Second, "New notifier", `document.getElementById("new-notifier")`)
	b.run("new notifier", chromedp.Click(chromedp.ID("new-notifier")))
	checkNotifierForms(t, b, hub, token)
	b.run("fill the webhook",
		typeInto(chromedp.ID("n-name"), "ops hook"),
		typeInto(chromedp.ID("n-url"), hookURL))
	b.run("create", chromedp.Click(chromedp.ID("notifier-save")))
	nrow := `[...document.querySelectorAll('#notifiers-table tbody tr')].find(tr => tr.querySelector('.name').textContent === "ops hook")`
	b.waitJS(10*time.Second, "notifier listed", nrow+` && !document.getElementById("notifier-form")`)
	var notifiers []struct {
		ID         string   `json:"id"`
		Name       string   `json:"name"`
		Type       string   `json:"type"`
		URL        string   `json:"url"`
		Severities []string `json:"severities"`
	}
	alertsAPI(t, hub, token, http.MethodGet, "/api/notifiers", nil, &notifiers)
	if len(notifiers) != 1 || notifiers[0].Type != "webhook" || notifiers[0].URL != "<redacted>" || strings.Join(notifiers[0].Severities, ",") != "critical" {
		t.Fatalf("notifiers via API = %+v", notifiers)
	}
	if page := js[string](b, `document.querySelector("main").textContent`); strings.Contains(page, "s3cret") {
		t.Error("the page shows the webhook URL's secret")
	}
	sendTest := func(what string) {
		t.Helper()
		b.exec("send test", nrow+`.querySelector('button[data-act="test"]').click()`)
		b.waitJS(15*time.Second, what, nrow+`.querySelector('.al-test.ok') && `+nrow+`.querySelector('.al-test').textContent.startsWith("Test sent")`)
		select {
		case got := <-hooks:
			if got != "/hook?token=s3cret" {
				t.Errorf("%s: webhook got POST %s", what, got)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the webhook server got no POST", what)
		}
	}
	sendTest("test sent")

	// Edit: the URL input is empty with a "<redacted>" placeholder; saving
	// without touching it keeps the stored URL.
	b.exec("edit", nrow+`.querySelector('button[data-act="edit"]').click()`)
	b.waitJS(5*time.Second, "edit form", `document.getElementById("n-url") && document.getElementById("n-url").value === "" && document.getElementById("n-url").placeholder.startsWith("<redacted>")`)
	b.exec("rename", `document.getElementById("n-name").value = ""`)
	b.run("rename", typeInto(chromedp.ID("n-name"), "ops hook"), chromedp.Click(chromedp.ID("notifier-save")))
	b.waitJS(10*time.Second, "saved", nrow+` && !document.getElementById("notifier-form")`)
	sendTest("test after edit")
	b.screenshot("alerts-notifiers")

	// Silences: prefilled from the URL, created, listed, expired.
	b.run("silences", chromedp.Navigate(base+"/silences?rule=builtin-cpu-high&machine=web-*"))
	b.waitJS(10*time.Second, "prefilled form", `document.getElementById("silence-rule").value === "builtin-cpu-high" && document.getElementById("silence-machine").value === "web-*"`)
	b.exec("24 hours", `(() => { const s = document.getElementById("silence-duration"); s.value = "24h"; s.dispatchEvent(new Event("change", {bubbles: true})); })()`)
	b.run("comment and create", typeInto(chromedp.ID("silence-comment"), "maintenance <b>window</b>"), chromedp.Click(chromedp.ID("silence-create")))
	srow := `document.querySelector('#silences-active tbody tr')`
	b.waitJS(10*time.Second, "silence listed", srow+` && `+srow+`.textContent.includes("maintenance <b>window</b>") && `+srow+`.textContent.includes("web-*")`)
	var silences []struct {
		ID       string `json:"id"`
		Matchers struct {
			RuleID  string `json:"rule_id"`
			Machine string `json:"machine"`
		} `json:"matchers"`
		StartsAt time.Time `json:"starts_at"`
		EndsAt   time.Time `json:"ends_at"`
		Active   bool      `json:"active"`
	}
	alertsAPI(t, hub, token, http.MethodGet, "/api/silences", nil, &silences)
	if len(silences) != 1 || silences[0].Matchers.RuleID != "builtin-cpu-high" || silences[0].Matchers.Machine != "web-*" || !silences[0].Active ||
		absDuration(silences[0].EndsAt.Sub(silences[0].StartsAt)-24*time.Hour) > time.Minute {
		t.Fatalf("silences via API = %+v", silences)
	}
	b.exec("expire", srow+`.querySelector('button[data-act="expire"]').click()`)
	b.waitJS(2*time.Second, "asks again", srow+`.querySelector('button[data-act="expire"]').textContent === "Really expire?"`)
	b.exec("confirm expire", srow+`.querySelector('button[data-act="expire"]').click()`)
	b.waitJS(10*time.Second, "moved to expired", `!document.querySelector('#silences-active tbody tr') && document.querySelectorAll('#silences-expired tbody tr').length === 1`)
	alertsAPI(t, hub, token, http.MethodGet, "/api/silences/"+url.PathEscape(silences[0].ID), nil, &silences[0])
	if silences[0].Active {
		t.Errorf("expired silence still active: %+v", silences[0])
	}
	b.waitJS(time.Second, "nothing injected", `document.querySelectorAll('main b').length === 0`)
	b.checkClean()
}

// alertsBrowserLogin logs in through the login page and lands on next.
func alertsBrowserLogin(b *browser, base, user, password, next string) {
	b.t.Helper()
	b.run("open login", chromedp.Navigate(base+"/login?next="+url.QueryEscape(next)))
	b.waitJS(10*time.Second, "login form", `document.querySelector('main form input[type="password"]')`)
	b.run("type credentials",
		typeInto(chromedp.CSS(`main form input:not([type="password"]):not([type="hidden"]):not([type="checkbox"])`), user),
		typeInto(chromedp.CSS(`main form input[type="password"]`), password+"\r"))
	b.waitJS(10*time.Second, "logged in", `location.pathname !== "/login"`)
	if js[string](b, `location.pathname + location.search`) != next {
		b.run("open "+next, chromedp.Navigate(base+next))
	}
}

// alertsRule is the subset of a rule the test reads.
type alertsRule struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Metric    string            `json:"metric"`
	Matchers  map[string]string `json:"matchers"`
	Op        string            `json:"op"`
	Threshold float64           `json:"threshold"`
	For       string            `json:"for"`
	Severity  string            `json:"severity"`
	Enabled   bool              `json:"enabled"`
}

// alertsAlert is the subset of an alert the test reads.
type alertsAlert struct {
	ID           string `json:"id"`
	Machine      string `json:"machine"`
	State        string `json:"state"`
	Severity     string `json:"severity"`
	Acknowledged bool   `json:"acknowledged"`
	Ack          *struct {
		By      string `json:"by"`
		Comment string `json:"comment"`
	} `json:"ack"`
}

// absDuration is |x|.
func absDuration(x time.Duration) time.Duration {
	if x < 0 {
		return -x
	}
	return x
}

// alertsJSString is s as a JavaScript string literal.
func alertsJSString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// alertsLogin logs in through POST /api/auth/login and returns the bearer
// token.
func alertsLogin(t *testing.T, hub *hubProc, user, password string) string {
	t.Helper()
	var out struct {
		Token string `json:"token"`
	}
	alertsAPI(t, hub, "", http.MethodPost, "/api/auth/login", map[string]string{"username": user, "password": password}, &out)
	if out.Token == "" {
		t.Fatal("login answered no token")
	}
	return out.Token
}

// alertsAPI sends a JSON request (with a bearer token when given), fails the
// test on a non-2xx answer and decodes the answer into v.
func alertsAPI(t *testing.T, hub *hubProc, token, method, path string, body, v any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+hub.http+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: status %d: %s", method, path, resp.StatusCode, truncate(string(b)))
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, truncate(string(b)), err)
		}
	}
}

// alertsStatus is the status of an authenticated GET.
func alertsStatus(t *testing.T, hub *hubProc, token, path string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+hub.http+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
