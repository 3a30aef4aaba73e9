package history

import (
	"strings"
	"testing"
)

var matrixSeeds = []string{
	`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"x","machine":"m"},"values":[[1796410442,"1"],[1796410444.5,"NaN"],[1796410446.001,"+Inf"]]}]}}`,
	`{"status":"success","data":{"resultType":"matrix","result":[]}}`,
	`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}`,
	`{"status":"error","errorType":"bad_data","error":"parse error"}`,
	`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":1},"values":[[1,1]]}]}}`,
	`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1e300,"1"]]}]}}`,
	`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[ 1 , "2" ]]}]}}`,
	`{"status":"success","data":[{"__name__":"x"}]}`,
	`<html>502 Bad Gateway</html>`,
	`{"status":"ok"}`,
	``,
}

// FuzzDecodeMatrix: any TSDB answer decodes to series or a clear error,
// never a panic; decoded timestamps stay in range.
func FuzzDecodeMatrix(f *testing.F) {
	for _, s := range matrixSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ss, err := decodeMatrix(b)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		for _, s := range ss {
			for _, p := range s.points {
				if p.t > 1e16 || p.t < -1e16 {
					t.Fatalf("timestamp %d out of range", p.t)
				}
			}
		}
		_, _ = decodeSeries(b)
		_, _ = decodeLabelSets(b)
		_ = apiErrorText(b, "500")
	})
}

// TestDecodeMatrix: what the decoder takes and what it refuses, with the
// reason.
func TestDecodeMatrix(t *testing.T) {
	ss, err := decodeMatrix([]byte(matrixSeeds[0]))
	if err != nil || len(ss) != 1 || len(ss[0].points) != 3 || ss[0].points[1].t != 1796410444500 || ss[0].labels["machine"] != "m" {
		t.Fatalf("valid matrix: %v %+v", err, ss)
	}
	for seed, want := range map[int]string{
		2:  "result type",
		3:  "query failed: bad_data: parse error",
		4:  "decode matrix",
		5:  "want a point",
		8:  "not a Prometheus API answer",
		9:  "not a Prometheus API answer: status",
		10: "not a Prometheus API answer",
	} {
		_, err := decodeMatrix([]byte(matrixSeeds[seed]))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("seed %d: want %q, got %v", seed, want, err)
		}
	}
	if ss, err := decodeSeries([]byte(matrixSeeds[2])); err != nil || len(ss) != 1 || ss[0].points[0] != (sample{t: 1000, v: 1}) {
		t.Errorf("vector: %v %+v", err, ss)
	}
	if _, err := decodeSeries([]byte(`{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}`)); err == nil {
		t.Errorf("scalar: %v", err)
	}
	if ss, err := decodeMatrix([]byte(matrixSeeds[6])); err != nil || ss[0].points[0] != (sample{t: 1000, v: 2}) {
		t.Errorf("spaces in a point: %v %+v", err, ss)
	}
}
