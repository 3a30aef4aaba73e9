package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestLogDurations: both log formats write a duration the way flags take
// it ("1.5s"), never as integer nanoseconds; groups included.
func TestLogDurations(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		var buf bytes.Buffer
		log, err := (&logFlags{level: "info", format: format}).logger(&buf)
		if err != nil {
			t.Fatal(err)
		}
		log.Info("tick", "took", 1500*time.Millisecond, slog.Group("retry", "in", 10*time.Minute), "n", 3)
		out := buf.String()
		if format == "json" {
			var rec struct {
				Took  string `json:"took"`
				Retry struct {
					In string `json:"in"`
				} `json:"retry"`
				N int `json:"n"`
			}
			if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			if rec.Took != "1.5s" || rec.Retry.In != "10m0s" || rec.N != 3 {
				t.Errorf("json log %s: want took 1.5s, retry.in 10m0s, n 3", out)
			}
			continue
		}
		if !strings.Contains(out, "took=1.5s") || !strings.Contains(out, "retry.in=10m0s") {
			t.Errorf("text log %q", out)
		}
	}
}
