package tui

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden frames under testdata/")

// TestGoldenFrames renders fixed data at 80×24 and 120×40 and compares the
// frames with testdata/*.golden (go test -run Golden -update rewrites them).
func TestGoldenFrames(t *testing.T) {
	cases := []struct {
		name string
		keys []string
		prep func(f *Fleet)
	}{
		{name: "overview"},
		{name: "overview-sorted-cpu", keys: []string{"s"}},
		{name: "overview-filter", keys: []string{"/", "d", "b"}},
		{name: "detail", keys: []string{"down", "enter"}},
		{name: "help", keys: []string{"?"}},
		{name: "alerts-none", keys: []string{"a"}},
		{name: "alerts", keys: []string{"a", "down"}, prep: func(f *Fleet) { f.SetAlerts(fixtureAlerts()) }},
		{name: "disconnected", prep: func(f *Fleet) {
			f.SetConn(ConnState{Err: "connect: connection refused", RetryAt: fixedNow.Add(4e9)})
		}},
	}
	for _, size := range [][2]int{{80, 24}, {120, 40}} {
		for _, c := range cases {
			f := fixtureFleet(30)
			if c.prep != nil {
				c.prep(f)
			}
			m := newTestModel(t, f, size[0], size[1])
			press(m, c.keys...)
			got := m.View()
			file := filepath.Join("testdata", c.name+"-"+itoa(size[0])+"x"+itoa(size[1])+".golden")
			if *update {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -run Golden -update)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from the golden frame; got:\n%s\nwant:\n%s", file, got, want)
			}
		}
	}
}

func itoa(n int) string {
	b := []byte{}
	for n > 0 || len(b) == 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}
