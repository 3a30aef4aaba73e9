// Package collect owns the per-host collectors: each reads one Linux source
// (/proc, /sys, statfs) and turns it into metric samples for one tick, and a
// Set runs a fixed list of them concurrently under a hard per-collector
// timeout. Deeper collectors (PSI, hwmon, thermal, battery, systemd,
// containers, SMART, GPU, textfile) are added when their source exists;
// the ones that exec a program or call an API do so in the background on
// their own interval (slow.go), so a tick never waits on them.
//
// Parsers are pure functions over bytes, tested on literals and on the fake
// /proc and /sys tree under testdata/. The hot per-second files (stat,
// meminfo, loadavg, net/dev, diskstats, mountinfo, uptime) are parsed by hand
// into buffers each collector reuses: the agent's whole budget is 0.25% of one
// core, and github.com/prometheus/procfs parses every field of those files
// (the long intr line of stat, fmt.Sscanf per diskstats line, a map per
// mount), allocating far more than the few fields we need. Measured on the
// same real files (BenchmarkParseVsProcfs, docs/benchmarks.md): stat 33 µs vs
// 234 µs, diskstats 40 µs vs 259 µs, meminfo 28 µs vs 74 µs, with 1
// allocation against 24–176.
package collect
