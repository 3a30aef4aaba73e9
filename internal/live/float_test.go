package live

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestAppendJSONFloatFewDecimals: a non-integer value is written exactly as
// strconv's shortest text ('g', -1), whether the few-decimals path or the
// general one writes it.
func TestAppendJSONFloatFewDecimals(t *testing.T) {
	check := func(v float64) {
		t.Helper()
		if v == math.Trunc(v) || math.IsNaN(v) || math.IsInf(v, 0) {
			return // integers and non-numbers have their own forms
		}
		got := string(appendJSONFloat(nil, v))
		if want := strconv.FormatFloat(v, 'g', -1, 64); got != want {
			t.Fatalf("appendJSONFloat(%b) = %s, want %s", v, got, want)
		}
	}
	for _, v := range []float64{
		0.01, 0.1, 0.5, 0.05, 0.0001, 0.0009, 0.001, 0.0101, 1.5, 12.34, 12.3, 99.99,
		999999.99, 999999.9999, 999999.5, 1e6 - 0.0001, 1e-4 + 1e-8, 0.00009999,
		0.1 + 0.2, 1.0 / 3, math.Pi, math.SmallestNonzeroFloat64, 1e21 + 0.5, 123456.7891,
		math.Nextafter(0.01, 1), math.Nextafter(0.01, 0), math.Nextafter(1e6, 0), math.Nextafter(1e-4, 0),
	} {
		check(v)
		check(-v)
	}
	// Every hundredth and ten-thousandth near zero, where the leading
	// zeros of the fraction matter.
	for i := -20000; i <= 20000; i++ {
		check(float64(i) / 100)
		check(float64(i) / 10000)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		// Rounded the way agents round (math.Round(v*100)/100), over the
		// whole range the fast path takes and past it.
		x := math.Pow(10, r.Float64()*12-5) * float64(1-2*r.IntN(2))
		check(math.Round(x*100) / 100)
		check(math.Round(x*10000) / 10000)
		check(x)
		check(math.Float64frombits(r.Uint64()))
	}
}

// BenchmarkAppendJSONFloat: a loadgen machine's values (hundredths, ten
// thousandths, integers), the live view's mix, written by appendJSONFloat
// and, for comparison, by the integer path and strconv's shortest search
// alone (appendJSONFloat before the few-decimals path).
func BenchmarkAppendJSONFloat(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := make([]float64, 1000)
	for i := range vals {
		x := math.Exp(2 + 5*r.Float64())
		switch i % 5 {
		case 0, 1:
			vals[i] = math.Round(x*100) / 100
		case 2, 3:
			vals[i] = math.Round(x/1000*10000) / 10000
		default:
			vals[i] = math.Round(x)
		}
	}
	for _, c := range []struct {
		name string
		f    func([]byte, float64) []byte
	}{
		{"appendJSONFloat", appendJSONFloat},
		{"shortest-only", func(b []byte, v float64) []byte {
			if v == math.Trunc(v) && math.Abs(v) < 1e15 {
				return strconv.AppendInt(b, int64(v), 10)
			}
			return strconv.AppendFloat(b, v, 'g', -1, 64)
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			buf := make([]byte, 0, 64)
			b.ReportAllocs()
			for b.Loop() {
				for _, v := range vals {
					buf = c.f(buf[:0], v)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(vals)), "ns/value")
		})
	}
}
