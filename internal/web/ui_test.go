package web

import (
	"io/fs"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestUIRoutes(t *testing.T) {
	e := newEnv(t, nil)
	f := func(path string, status int, contentType string) []byte {
		t.Helper()
		res, raw := e.get(t, path, nil)
		if res.StatusCode != status {
			t.Fatalf("%s: status %d, want %d", path, res.StatusCode, status)
		}
		if !strings.HasPrefix(res.Header.Get("Content-Type"), contentType) {
			t.Errorf("%s: Content-Type %q, want %s", path, res.Header.Get("Content-Type"), contentType)
		}
		if status == 200 {
			if csp := res.Header.Get("Content-Security-Policy"); csp != CSP {
				t.Errorf("%s: CSP %q", path, csp)
			}
			if res.Header.Get("ETag") == "" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s: headers %v", path, res.Header)
			}
		}
		return raw
	}
	index := f("/", 200, "text/html")
	if page := f("/machines/web-1", 200, "text/html"); string(page) != string(index) {
		t.Error("/machines/{id} must serve the dashboard page")
	}
	f("/machines/%3Cscript%3E", 200, "text/html")
	f("/ui/css/app.css", 200, "text/css")
	f("/ui/js/overview.js", 200, "text/javascript")
	f("/ui/js/dom.js", 200, "text/javascript")
	f("/ui/js/feed.worker.js", 200, "text/javascript")
	f("/ui/js/sections/core.js", 200, "text/javascript")
	f("/ui/vendor/uPlot.iife.min.js", 200, "text/javascript")
	f("/ui/vendor/uPlot.min.css", 200, "text/css")
	f("/ui/nope.js", 404, "application/json")
	f("/ui/vendor/uPlot.LICENSE", 404, "application/json")
	f("/ui/index.html", 404, "application/json")
	f("/machines/", 404, "application/json")
}

func TestUIConditionalGet(t *testing.T) {
	e := newEnv(t, nil)
	res, _ := e.get(t, "/ui/js/machine.js", nil)
	req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/ui/js/machine.js", nil)
	req.Header.Set("If-None-Match", res.Header.Get("ETag"))
	res2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res2.Body.Close()
	if res2.StatusCode != http.StatusNotModified {
		t.Fatalf("revalidation: status %d, want 304", res2.StatusCode)
	}
}

// TestUISources guards the rules of the front end: agent strings reach the
// DOM only as text, no inline script or style (the CSP forbids them), no
// remote resources, and the embedded UI stays small.
func TestUISources(t *testing.T) {
	forbidden := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setAttribute\("style"|\.cssText|https?://`)
	total := 0
	for prefix, fsys := range uiFS() {
		err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasPrefix(p, "vendor/") {
				return err
			}
			b, err := fs.ReadFile(fsys, p)
			if err != nil {
				return err
			}
			p = prefix + p
			total += len(b)
			if strings.HasSuffix(p, ".js") {
				for i, line := range strings.Split(string(b), "\n") {
					if m := forbidden.FindString(line); m != "" {
						t.Errorf("%s:%d uses %q", p, i+1, m)
					}
				}
			}
			if strings.HasSuffix(p, ".html") {
				s := string(b)
				if strings.Contains(s, " style=") || strings.Contains(s, " on") && regexp.MustCompile(`\son[a-z]+=`).MatchString(s) {
					t.Errorf("%s has inline style or handlers", p)
				}
				if regexp.MustCompile(`<script>|<style`).MatchString(s) {
					t.Errorf("%s has inline script or style", p)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Pages are ES modules loaded only on their own routes (alerts, rules,
	// admin…): the budget bounds the binary and a cold cache, not what the
	// overview loads.
	if total > 320<<10 {
		t.Errorf("embedded UI is %d bytes without vendor/, budget 320 KiB", total)
	}
}
