package metric

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestValidNames(t *testing.T) {
	f := func(s string, metric, label bool) {
		t.Helper()
		if got := ValidMetricName(s); got != metric {
			t.Errorf("ValidMetricName(%q) = %v", s, got)
		}
		if got := ValidLabelName(s); got != label {
			t.Errorf("ValidLabelName(%q) = %v", s, got)
		}
	}
	f("cpu_usage_percent", true, true)
	f("node:cpu:rate5m", true, false)
	f("_x", true, true)
	f("__name__", true, false) // reserved for labels
	f("9lives", false, false)
	f("", false, false)
	f("a-b", false, false)
	f("a b", false, false)
	f("é", false, false)
	f("x9", true, true)
}

func TestValidateSeries(t *testing.T) {
	lim := DefaultLimits
	f := func(name string, ls Labels, wantErr string) {
		t.Helper()
		err := lim.ValidateSeries(name, ls)
		if wantErr == "" {
			if err != nil {
				t.Errorf("%s%v: %v", name, ls, err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s%v: error %v, want %q", name, ls, err, wantErr)
		}
	}
	f("m", nil, "")
	f("m", Labels{{"a", "1"}, {"b", "<script>"}}, "")
	f("bad name", nil, "invalid metric name")
	f(strings.Repeat("m", 201), nil, "metric name is 201 bytes")
	f("m", Labels{{"b", "1"}, {"a", "1"}}, "not sorted")
	f("m", Labels{{"a", "1"}, {"a", "2"}}, "repeated")
	f("m", Labels{{"machine", "x"}}, "reserved")
	f("sysmonstm_agent_seq", Labels{{"instance", "2a"}}, "reserved for the hub")
	f("sysmonstm_anything", nil, "reserved for the hub")
	f("sysmonstm", nil, "")      // not the prefix
	f("my_sysmonstm_x", nil, "") // prefix only
	if err := lim.ValidateSeries("sysmonstm_x", nil); !errors.Is(err, ErrReservedName) {
		t.Errorf("reserved name: %v, want ErrReservedName", err)
	}
	f("m", Labels{{"__x", "1"}}, "invalid label name")
	f("m", Labels{{"a", "\xff"}}, "not valid UTF-8")
	f("m", Labels{{"a", strings.Repeat("v", 1025)}}, "1025 bytes")
	many := make(Labels, 31)
	for i := range many {
		many[i] = Label{Name: "l" + string(rune('a'+i/10)) + string(rune('a'+i%10)), Value: "v"}
	}
	f("m", many, "31 labels")
}

func TestValidateValueAndMachineID(t *testing.T) {
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if ValidateValue(v) == nil {
			t.Errorf("%v accepted", v)
		}
	}
	if ValidateValue(-0.0) != nil || ValidateValue(math.MaxFloat64) != nil {
		t.Error("finite value refused")
	}
	for id, ok := range map[string]bool{
		"web-1": true, "<img src=x onerror=alert(1)>": true, "名前": true, "a b": true,
		"": false, "a\nb": false, "a\x1b[2J": false, "\u0085": false, "\xff": false,
		strings.Repeat("x", 254): false,
	} {
		if err := ValidateMachineID(id); (err == nil) != ok {
			t.Errorf("ValidateMachineID(%q) = %v, want ok=%v", id, err, ok)
		}
	}
}

func TestSeriesKeyDistinguishes(t *testing.T) {
	a := SeriesKey("m", Labels{{"a", "b,c"}})
	b := SeriesKey("m", Labels{{"a", "b"}, {"c", ""}})
	c := SeriesKey("ma", nil)
	if a == b || a == c || b == c {
		t.Fatalf("keys collide: %q %q %q", a, b, c)
	}
	s := Sample{Name: "m", Labels: Labels{{"a", "b,c"}}}
	if s.Key() != a {
		t.Fatal("Sample.Key differs from SeriesKey")
	}
	ls := FromMap(map[string]string{"z": "1", "a": "2"})
	if ls[0].Name != "a" || ls.Get("z") != "1" || ls.Get("nope") != "" || ls.Map()["a"] != "2" {
		t.Fatalf("FromMap/Get/Map: %v", ls)
	}
}

func FuzzValidateSeries(f *testing.F) {
	f.Add("cpu_usage_percent", "cpu", "0")
	f.Add("a", "machine", "x")
	f.Add("\xff", "\x00", "\xfe")
	f.Fuzz(func(t *testing.T, name, ln, lv string) {
		ls := Labels{{Name: ln, Value: lv}}
		if DefaultLimits.ValidateSeries(name, ls) != nil {
			return
		}
		if !ValidMetricName(name) || !ValidLabelName(ln) || ln == MachineLabel {
			t.Fatalf("accepted %q{%q=%q}", name, ln, lv)
		}
	})
}
