package edge

import (
	"strings"
	"testing"
)

func TestGlob(t *testing.T) {
	f := func(pattern, s string, want bool) {
		t.Helper()
		if got := glob(pattern, s); got != want {
			t.Errorf("glob(%q, %q) = %v, want %v", pattern, s, got, want)
		}
	}
	f("*", "", true)
	f("*", "anything/with/slashes", true)
	f("web-*", "web-1", true)
	f("web-*", "db-1", false)
	f("web-?", "web-1", true)
	f("web-?", "web-12", false)
	f("web-?", "web-é", true) // ? is one character, not one byte
	f("*-prod", "eu/web-prod", true)
	f("*a*b*c", "xxaxxbxxcxxc", true)
	f("*a*b*c", "xxaxxbxx", false)
	f("exact", "exact", true)
	f("exact", "exactly", false)
	f("", "", true)
	f("", "x", false)
	// Pathological backtracking stays fast.
	f(strings.Repeat("*a", 20)+"b", strings.Repeat("a", 200), false)
}

func TestParseGlobs(t *testing.T) {
	f := func(list string, in, out []string) {
		t.Helper()
		g, err := ParseGlobs(list)
		if err != nil {
			t.Fatalf("ParseGlobs(%q): %v", list, err)
		}
		for _, s := range in {
			if !g.Match(s) {
				t.Errorf("%q: %q should match", list, s)
			}
		}
		for _, s := range out {
			if g.Match(s) {
				t.Errorf("%q: %q should not match", list, s)
			}
		}
	}
	f("*", []string{"a", "web-1", ""}, nil)
	f("web-*, db-1", []string{"web-1", "db-1"}, []string{"db-2", "cache"})
	f("*,!secret-*", []string{"web-1"}, []string{"secret-db"})
	f("!secret-*", []string{"web-1"}, []string{"secret-db"}) // only excludes: everything else
	f("!*", nil, []string{"a", "env"})
	f("", nil, []string{"a"})
	if g, _ := ParseGlobs(" , "); !g.Empty() {
		t.Error("blank list is not empty")
	}
	if _, err := ParseGlobs("a,!"); err == nil {
		t.Error(`"!" alone accepted`)
	}
}

func TestParseSelectors(t *testing.T) {
	sels, err := ParseSelectors(DefaultMetrics)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range sels {
		names = append(names, s.String())
	}
	want := `cpu_usage_percent{cpu="total"} memory_usage_percent load1 load5 load15 filesystem_usage_percent network_receive_bytes_per_second network_transmit_bytes_per_second uptime_seconds`
	if strings.Join(names, " ") != want {
		t.Fatalf("default selectors = %q", names)
	}

	sels, err = ParseSelectors(` net*{interface!="lo", device="e*"} , a:b{x="1,2}"}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(sels) != 2 || sels[0].String() != `net*{interface!="lo",device="e*"}` || sels[1].String() != `a:b{x="1,2}"}` {
		t.Fatalf("parsed %v", sels)
	}

	for _, bad := range []string{`{cpu="x"}`, `cpu{cpu=x}`, `cpu{cpu="x"`, `cpu{="x"}`, `cpu{cpu~"x"}`, `cpu x`, `9cpu`, `cpu{__name__="x"}`, `cpu{c="x" d="y"}`} {
		if _, err := ParseSelectors(bad); err == nil {
			t.Errorf("ParseSelectors(%q) accepted", bad)
		}
	}
	if sels, err := ParseSelectors(" "); err != nil || len(sels) != 0 {
		t.Errorf("blank: %v %v", sels, err)
	}
}

func TestSelectorsMatch(t *testing.T) {
	sels, err := ParseSelectors(DefaultMetrics + `,network_*{interface!="lo",interface!="veth*"}`)
	if err != nil {
		t.Fatal(err)
	}
	lbl := func(kv ...string) func(string) string {
		return func(n string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == n {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	f := func(name string, labels func(string) string, want bool) {
		t.Helper()
		if got := sels.Match(name, labels); got != want {
			t.Errorf("Match(%s) = %v, want %v", name, got, want)
		}
	}
	f("cpu_usage_percent", lbl("cpu", "total"), true)
	f("cpu_usage_percent", lbl("cpu", "0"), false) // per-CPU series stay private
	f("cpu_usage_percent", lbl(), false)
	f("memory_usage_percent", lbl(), true)
	f("memory_used_bytes", lbl(), false)
	f("filesystem_usage_percent", lbl("mountpoint", "/"), true)
	f("filesystem_size_bytes", lbl("mountpoint", "/"), false)
	f("network_errors_total", lbl("interface", "eth0"), true)
	f("network_errors_total", lbl("interface", "veth12"), false)
	f("processes_total", lbl(), false)
	f("systemd_unit_active", lbl("unit", "sshd"), false)
	if !sels.MatchName("network_x") || sels.MatchName("smart_health") {
		t.Error("MatchName")
	}
}
