package hub

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/sysmonstm/sysmonstm/internal/ingest"
	"github.com/sysmonstm/sysmonstm/internal/store"
)

// Values of Limits.MaxMemory besides a byte count.
const (
	MaxMemoryAuto = 0  // sized from the cgroup memory limit when set, else off
	MaxMemoryOff  = -1 // no memory limit
	minMaxMemory  = 64 << 20
)

// cgroupRoot is where the hub reads its cgroup's memory limit.
const cgroupRoot = "/sys/fs/cgroup"

// cgroupMemoryLimit returns the memory limit of the cgroup mounted at root
// (cgroup v2 memory.max, else v1 memory/memory.limit_in_bytes), and false
// when none is set or readable.
func cgroupMemoryLimit(root string) (int64, bool, error) {
	for _, p := range []string{"memory.max", filepath.Join("memory", "memory.limit_in_bytes")} {
		b, err := os.ReadFile(filepath.Join(root, p))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, false, err
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, false, nil
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v <= 0 {
			return 0, false, fmt.Errorf("%s: %q is not a byte count", filepath.Join(root, p), s)
		}
		if v >= 1<<60 { // cgroup v1 writes "no limit" as a huge page-rounded number
			return 0, false, nil
		}
		return v, true, nil
	}
	return 0, false, nil
}

// resolveMaxMemory turns Limits.MaxMemory into the byte budget (0: none)
// and says where it came from.
func resolveMaxMemory(v int64, root string) (int64, string, error) {
	switch {
	case v > 0:
		return v, "--max-memory", nil
	case v == MaxMemoryOff:
		return 0, "off", nil
	}
	limit, ok, err := cgroupMemoryLimit(root)
	if err != nil {
		return 0, "", fmt.Errorf("read the cgroup memory limit for --max-memory auto: %w (set --max-memory BYTES or off)", err)
	}
	if !ok {
		return 0, "off (no cgroup memory limit)", nil
	}
	if limit < minMaxMemory {
		return 0, "", fmt.Errorf("the cgroup memory limit %d bytes is below the %d MiB the hub needs; set --max-memory BYTES or off", limit, minMaxMemory>>20)
	}
	return limit, filepath.Join(root, "memory.max"), nil
}

// defaultGCPercent is the hub's GOGC when no memory budget bounds its heap
// and the GOGC environment variable is unset. Go's default (100) lets the
// heap grow to twice what is live before collecting, and nearly all of the
// hub's heap is live TSDB head state that grows with the series; 50 keeps
// the resident size at about 1.5× the live heap for twice the collections
// (hub CPU within the noise of a shared machine: docs/benchmarks.md,
// "Memory per active series").
const defaultGCPercent = 50

// vmGCPercent is defaultGCPercent with --storage-engine vm. That hub's heap
// is mostly the engine's pointer-free buffers of rows and blocks, which the
// collector does not scan, and its collections cost little: 3 % of the
// hub's CPU at 50 (260,000 series at 1 s), so that 25 bounds the heap at
// 1.25× the live heap for a few percent of CPU (docs/benchmarks.md, "The
// VM engine's memory"). VictoriaMetrics itself runs at GOGC=30.
const vmGCPercent = 25

// applyMaxMemory sets Go's soft memory limit to ingest.MemorySoftLimit of
// the budget; with no budget (max 0) it sets GOGC to defaultGCPercent
// (vmGCPercent for the VM engine) unless the environment sets GOGC.
func applyMaxMemory(max int64, engine string) {
	if max > 0 {
		debug.SetMemoryLimit(int64(float64(max) * ingest.MemorySoftLimit))
		return
	}
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercentFor(engine))
	}
}

// gcPercentFor returns the GOGC the hub sets without a budget for a raw
// tier on engine.
func gcPercentFor(engine string) int {
	if engine == store.EngineVM {
		return vmGCPercent
	}
	return defaultGCPercent
}

// ParseMaxMemory reads a --max-memory value: "auto", "off", or a byte
// count with an optional KiB/MiB/GiB/TiB (or K/M/G/T) suffix.
func ParseMaxMemory(s string) (int64, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto", "":
		return MaxMemoryAuto, nil
	case "off", "0":
		return MaxMemoryOff, nil
	}
	num, mult := s, 1.0
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}} {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || !(f > 0) || math.IsInf(f, 0) || f*mult >= 1<<62 {
		return 0, fmt.Errorf("want auto, off, or a byte count such as 2147483648 or 2GiB")
	}
	return int64(f * mult), nil
}
