package hub

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/sysmonstm/sysmonstm/internal/ingest"
	"github.com/sysmonstm/sysmonstm/internal/store"
)

func TestParseMaxMemory(t *testing.T) {
	for in, want := range map[string]int64{
		"auto": MaxMemoryAuto, "off": MaxMemoryOff, "0": MaxMemoryOff,
		"536870912": 512 << 20, "512MiB": 512 << 20, "512M": 512 << 20, "2GiB": 2 << 30, "1.5G": 3 << 29,
	} {
		if got, err := ParseMaxMemory(in); err != nil || got != want {
			t.Errorf("ParseMaxMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"-5", "lots", "1e30GiB", "NaN", "12XB", "-1"} {
		if _, err := ParseMaxMemory(in); err == nil {
			t.Errorf("ParseMaxMemory(%q) accepted", in)
		}
	}
}

func TestResolveMaxMemoryFromCgroup(t *testing.T) {
	write := func(t *testing.T, rel, content string) string {
		root := t.TempDir()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return root
	}
	for _, c := range []struct {
		name, rel, content string
		in, want           int64
		err                string
	}{
		{"v2 limit", "memory.max", "1073741824\n", MaxMemoryAuto, 1 << 30, ""},
		{"v2 unlimited", "memory.max", "max\n", MaxMemoryAuto, 0, ""},
		{"v1 limit", "memory/memory.limit_in_bytes", "268435456\n", MaxMemoryAuto, 256 << 20, ""},
		{"v1 unlimited", "memory/memory.limit_in_bytes", "9223372036854771712\n", MaxMemoryAuto, 0, ""},
		{"flag wins", "memory.max", "1073741824\n", 512 << 20, 512 << 20, ""},
		{"off wins", "memory.max", "1073741824\n", MaxMemoryOff, 0, ""},
		{"garbage", "memory.max", "lots\n", MaxMemoryAuto, 0, "not a byte count"},
		{"too small", "memory.max", "1048576\n", MaxMemoryAuto, 0, "below the 64 MiB"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, _, err := resolveMaxMemory(c.in, write(t, c.rel, c.content))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("%d, %v; want %d", got, err, c.want)
			}
		})
	}
	if got, _, err := resolveMaxMemory(MaxMemoryAuto, t.TempDir()); err != nil || got != 0 {
		t.Fatalf("no cgroup files: %d, %v; want off", got, err)
	}
}

func TestValidateMaxMemory(t *testing.T) {
	for v, ok := range map[int64]bool{MaxMemoryAuto: true, MaxMemoryOff: true, 64 << 20: true, 1 << 20: false, -2: false} {
		c := Config{DataDir: t.TempDir()}.withDefaults()
		c.Limits.MaxMemory = v
		if err := c.Validate(); (err == nil) != ok {
			t.Errorf("MaxMemory %d: %v", v, err)
		}
	}
}

// Without a memory budget the hub collects at GOGC=50 (25 with the VM
// engine) unless the
// environment sets GOGC; with one, Go's soft limit bounds the heap and
// GOGC is left alone.
func TestApplyMaxMemoryGCPercent(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev); debug.SetMemoryLimit(math.MaxInt64) })
	if v, had := os.LookupEnv("GOGC"); had {
		t.Cleanup(func() { os.Setenv("GOGC", v) })
	}
	os.Unsetenv("GOGC")
	for engine, want := range map[string]int{store.EngineTSDB: defaultGCPercent, store.EngineVM: vmGCPercent} {
		applyMaxMemory(0, engine)
		if got := debug.SetGCPercent(100); got != want {
			t.Fatalf("%s engine, no budget, no GOGC: GC percent %d, want %d", engine, got, want)
		}
	}
	t.Setenv("GOGC", "100")
	applyMaxMemory(0, store.EngineVM)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC=100 in the environment: GC percent %d, want it kept", got)
	}
	os.Unsetenv("GOGC")
	budget := int64(1 << 30)
	applyMaxMemory(budget, store.EngineVM)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("with a budget: GC percent %d, want it kept", got)
	}
	if got, want := debug.SetMemoryLimit(-1), int64(float64(budget)*ingest.MemorySoftLimit); got != want {
		t.Fatalf("with a 1 GiB budget: soft limit %d, want %d", got, want)
	}
}
