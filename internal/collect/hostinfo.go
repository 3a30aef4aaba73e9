package collect

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// HostInfo describes the machine an agent runs on; the agent sends it once
// in its hello.
type HostInfo struct {
	Hostname         string
	OS               string // "linux"
	Platform         string // e.g. "Debian GNU/Linux 12 (bookworm)"
	KernelVersion    string // e.g. "6.1.0-18-amd64"
	Arch             string // runtime.GOARCH
	CPUModel         string
	CPUCores         uint32 // physical cores
	CPUThreads       uint32 // logical CPUs
	MemoryTotalBytes uint64
	BootTime         time.Time
}

// ReadHostInfo reads the host description from ProcPath and, for
// /etc/os-release, RootFS. It returns what it could read together with the
// joined errors of what it could not.
func ReadHostInfo(opts Options) (HostInfo, error) {
	opts = opts.withDefaults()
	h := HostInfo{OS: "linux", Arch: runtime.GOARCH}
	var errs []error
	read := func(parts ...string) []byte {
		p := filepath.Join(append([]string{opts.ProcPath}, parts...)...)
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("read host info: %w", err))
		}
		return b
	}

	if b, err := os.ReadFile(filepath.Join(opts.ProcPath, "sys", "kernel", "hostname")); err == nil {
		h.Hostname = string(bytes.TrimSpace(b))
	} else if h.Hostname, err = os.Hostname(); err != nil {
		errs = append(errs, fmt.Errorf("read hostname: %w", err))
	}
	h.KernelVersion = string(bytes.TrimSpace(read("sys", "kernel", "osrelease")))

	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		if b, err := os.ReadFile(filepath.Join(opts.RootFS, p)); err == nil {
			h.Platform = parseOSRelease(b)
			break
		}
	}
	if h.Platform == "" {
		errs = append(errs, errors.New("read host info: no os-release under "+opts.RootFS))
	}

	if b := read("cpuinfo"); b != nil {
		h.CPUModel, h.CPUCores, h.CPUThreads = parseCPUInfo(b)
	}
	if b := read("meminfo"); b != nil {
		if m, err := parseMeminfo(b); err == nil {
			h.MemoryTotalBytes = m.total
		} else {
			errs = append(errs, err)
		}
	}
	if b := read("stat"); b != nil {
		if bt, err := parseBootTime(b); err == nil {
			h.BootTime = bt
		} else {
			errs = append(errs, err)
		}
		if h.CPUThreads == 0 { // cpuinfo without "processor" lines
			if cpus, err := parseStatCPU(b, nil); err == nil {
				h.CPUThreads = uint32(len(cpus) - 1)
			}
		}
	}
	if h.CPUCores == 0 {
		h.CPUCores = h.CPUThreads
	}
	return h, errors.Join(errs...)
}

// parseOSRelease returns PRETTY_NAME, or ID and VERSION_ID joined by a space.
func parseOSRelease(b []byte) string {
	vals := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		} else {
			v = strings.Trim(v, `"'`)
		}
		vals[k] = v
	}
	if p := vals["PRETTY_NAME"]; p != "" {
		return p
	}
	return strings.TrimSpace(vals["ID"] + " " + vals["VERSION_ID"])
}

// parseCPUInfo returns the CPU model, physical cores (distinct physical
// id/core id pairs) and logical CPUs ("processor" entries) of
// /proc/cpuinfo. Architectures without core ids report cores = 0 and leave
// the caller to fall back to the thread count.
func parseCPUInfo(b []byte) (model string, cores, threads uint32) {
	type core struct{ pkg, id string }
	seen := map[core]bool{}
	var pkg string
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "processor":
			threads++
		case "model name", "Model", "cpu model", "Hardware", "uarch":
			if model == "" {
				model = v
			}
		case "cpu": // ppc64 ("POWER9, altivec supported")
			if model == "" {
				model = v
			}
		case "physical id":
			pkg = v
		case "core id":
			seen[core{pkg, v}] = true
		}
	}
	return model, uint32(len(seen)), threads
}

// parseBootTime returns the btime line of /proc/stat.
func parseBootTime(b []byte) (time.Time, error) {
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		key, rest := nextField(line)
		if string(key) != "btime" {
			continue
		}
		v, _ := nextField(rest)
		n, ok := parseUint(v)
		if !ok {
			return time.Time{}, fmt.Errorf("stat btime %q: %w", v, errSyntax)
		}
		return time.Unix(int64(n), 0).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("stat: no btime: %w", errSyntax)
}
