//go:build pprof

package main

import (
	"net"
	"net/http"
	"net/http/pprof"
	"os"
)

// A binary built with `-tags pprof` serves Go's profiles
// (/debug/pprof/heap, /debug/pprof/profile, …) on the loopback address in
// SYSMONSTM_PPROF_LISTEN, for benchmarks (scripts/bench-memory-series.sh).
// Release builds have no such listener.
func init() {
	addr := os.Getenv("SYSMONSTM_PPROF_LISTEN")
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		os.Stderr.WriteString("pprof listener: " + err.Error() + "\n")
		os.Exit(2)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	go func() { _ = http.Serve(ln, mux) }()
}
