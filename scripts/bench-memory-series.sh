#!/usr/bin/env bash
# bench-memory-series.sh: resident memory per active series (issue #16).
# Runs a hub (built with -tags pprof) on a fresh data directory, drives it with
# `sysmonstm loadgen` (MACHINES x SERIES series at 1 s for DURATION), samples
# the hub's RSS every second, and at the end saves its heap profile and reads
# its Go heap and TSDB head series from /metrics. Then, unless VM=0, sends the
# same workload by remote write to a fresh /usr/bin/victoria-metrics and
# samples its RSS the same way. Prints one line per server. HUB=0 measures
# VictoriaMetrics alone (e.g. across an hour boundary in a run of its own).
#
# Usage: scripts/bench-memory-series.sh   (MACHINES=200 SERIES=1300 DURATION=150s VM=1 HUB=1
#        HUB_ENV="GOGC=100" HUB_FLAGS="..." LOADGEN_FLAGS="--sync-ticks" OUT=dir for heap.pprof and logs
#        PROFILE=1: also a 30 s CPU profile of the hub from the middle of the run, $OUT/hub.cpu.pprof)
# Needs: go, curl, python3; /usr/bin/victoria-metrics for the comparison.
set -euo pipefail

MACHINES=${MACHINES:-200}
SERIES=${SERIES:-1300}
DURATION=${DURATION:-150s}
VM=${VM:-1}
HUB=${HUB:-1}
HUB_ENV=${HUB_ENV:-}
HUB_FLAGS=${HUB_FLAGS:-}

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
OUT=${OUT:-$work/out}
mkdir -p "$OUT"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work/hub" "$work/vm"
	[[ $OUT == "$work/out" ]] || rm -rf "$work"
}
trap cleanup EXIT

bin=$work/sysmonstm
(cd "$root" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -tags pprof -o "$bin" ./cmd/sysmonstm)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
clk=$(getconf CLK_TCK)
cpu_seconds() { awk -v hz="$clk" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
wait_http() {
	for _ in $(seq 1 600); do
		curl -fs -o /dev/null "$1" && return 0
		sleep 0.1
	done
	echo "no answer from $1" >&2
	exit 1
}
# sample PID FILE: append "seconds rss_kib anon_kib file_kib unix_time" every
# second until PID's loadgen ends (RssAnon and RssFile from /proc: anonymous
# memory and file pages mapped into the process).
sample() {
	local pid=$1 file=$2 t=0
	while [[ -e $work/running ]]; do
		echo "$t $(awk '/^VmRSS:|^RssAnon:|^RssFile:/ { printf "%s ", $2 }' "/proc/$pid/status")$(date +%s)" >>"$file"
		sleep 1
		t=$((t + 1))
	done
}
# loadgen ARGS...: run the workload, sampling PID $measured into $work/$name.rss.
drive() {
	local name=$1 pid=$2
	shift 2
	touch "$work/running"
	sample "$pid" "$OUT/$name.rss" &
	local sp=$!
	# shellcheck disable=SC2086 # LOADGEN_FLAGS is a list of flags
	"$bin" loadgen "$@" ${LOADGEN_FLAGS:-} --machines "$MACHINES" --series "$SERIES" --interval 1s --duration "$DURATION" \
		--log-level warn 2>"$OUT/$name-loadgen.log" | tail -n 1 >"$OUT/$name-loadgen.json" || true
	rm -f "$work/running"
	wait "$sp"
}
peak() { sort -k2 -n "$1" | tail -n 1 | awk '{ print $2 }'; }

if [[ $HUB == 1 ]]; then
hub_http=$(free_port)
hub_grpc=$(free_port)
hub_pprof=$(free_port)
"$bin" token create --data-dir "$work/hub" --name bench >"$work/token" 2>/dev/null
env $HUB_ENV SYSMONSTM_PPROF_LISTEN="127.0.0.1:$hub_pprof" "$bin" hub --data-dir "$work/hub" \
	--listen-http "127.0.0.1:$hub_http" --listen-grpc "127.0.0.1:$hub_grpc" --log-level warn \
	--max-machines-per-token "$MACHINES" --max-active-series 100000000 $HUB_FLAGS >"$OUT/hub.log" 2>&1 &
hub_pid=$!
pids+=("$hub_pid")
wait_http "http://127.0.0.1:$hub_http/ready"
cpu0=$(cpu_seconds "$hub_pid")
if [[ ${PROFILE:-0} == 1 ]]; then
	half=$(($(python3 -c 'import sys; d=sys.argv[1]; print(int(float(d[:-1]) * {"s": 1, "m": 60, "h": 3600}[d[-1]]))' "$DURATION") / 2 - 15))
	(sleep "$((half > 0 ? half : 0))" && curl -fs "http://127.0.0.1:$hub_pprof/debug/pprof/profile?seconds=30" >"$OUT/hub.cpu.pprof") &
	pids+=($!)
fi
drive hub "$hub_pid" --hub "127.0.0.1:$hub_grpc" --token "$(cat "$work/token")"
cpu1=$(cpu_seconds "$hub_pid")
curl -fs "http://127.0.0.1:$hub_http/metrics" >"$OUT/hub.metrics"
curl -fs "http://127.0.0.1:$hub_pprof/debug/pprof/heap" >"$OUT/heap.pprof"
hub_end=$(rss_kib "$hub_pid")
kill "$hub_pid"
echo "0 $hub_end" >>"$OUT/hub.rss"
python3 - "$OUT" "$(peak "$OUT/hub.rss")" "$hub_end" "$cpu0" "$cpu1" "$HUB_ENV $HUB_FLAGS" <<'PY'
import json, re, sys
out, peak, end, c0, c1, conf = sys.argv[1], int(sys.argv[2]) * 1024, int(sys.argv[3]) * 1024, float(sys.argv[4]), float(sys.argv[5]), sys.argv[6].strip()
m = {}
for line in open(f"{out}/hub.metrics"):
    mm = re.match(r'^([a-z_:]+)(\{[^}]*\})? (\S+)$', line)
    if mm:
        m[mm.group(1) + (mm.group(2) or "")] = float(mm.group(3))
series = {t: m.get(f'prometheus_tsdb_head_series{{tier="{t}"}}', 0) for t in ("raw", "1m", "1h")}
lg = json.load(open(f"{out}/hub-loadgen.json"))
active = series["raw"] or m.get("sysmonstm_storage_raw_series", 0)  # --storage-engine vm
print(f"hub ({conf or 'defaults'}): raw head {active:,.0f} series, 1m {series['1m']:,.0f}, 1h {series['1h']:,.0f}; "
      f"peak RSS {peak/2**20:,.0f} MiB = {peak/active:,.0f} B/series, end RSS {end/2**20:,.0f} MiB = {end/active:,.0f} B/series; "
      f"Go heap in use {m.get('go_memstats_heap_inuse_bytes',0)/2**20:,.0f} MiB, next GC {m.get('go_memstats_next_gc_bytes',0)/2**20:,.0f} MiB; "
      f"CPU {c1-c0:.1f} s; acked {lg['acked_samples']:,} samples ({lg['samples_per_second']:,.0f}/s), errors {lg.get('errors',0)}")
PY
fi

if [[ $VM == 1 ]]; then
	vm_port=$(free_port)
	victoria-metrics -storageDataPath "$work/vm" -httpListenAddr "127.0.0.1:$vm_port" -retentionPeriod 30d \
		-loggerLevel ERROR >"$OUT/vm.log" 2>&1 &
	vm_pid=$!
	pids+=("$vm_pid")
	wait_http "http://127.0.0.1:$vm_port/health"
	cpu0=$(cpu_seconds "$vm_pid")
	drive vm "$vm_pid" --remote-write "http://127.0.0.1:$vm_port/api/v1/write"
	cpu1=$(cpu_seconds "$vm_pid")
	vm_end=$(rss_kib "$vm_pid")
	curl -fs "http://127.0.0.1:$vm_port/metrics" >"$OUT/vm.metrics"
	kill "$vm_pid"
	echo "0 $vm_end" >>"$OUT/vm.rss"
	python3 - "$OUT" "$(peak "$OUT/vm.rss")" "$vm_end" "$cpu0" "$cpu1" <<'PY'
import json, re, sys
out, peak, end, c0, c1 = sys.argv[1], int(sys.argv[2]) * 1024, int(sys.argv[3]) * 1024, float(sys.argv[4]), float(sys.argv[5])
active = 0
for line in open(f"{out}/vm.metrics"):
    if line.startswith("vm_cache_entries{type=\"storage/hour_metric_ids\"}"):
        active = float(line.split()[-1])
lg = json.load(open(f"{out}/vm-loadgen.json"))
per = f" = {peak/active:,.0f} B/series" if active else ""
print(f"VictoriaMetrics: {active:,.0f} active series; peak RSS {peak/2**20:,.0f} MiB{per}, end RSS {end/2**20:,.0f} MiB; "
      f"CPU {c1-c0:.1f} s; acked {lg['acked_samples']:,} samples ({lg['samples_per_second']:,.0f}/s), errors {lg.get('errors',0)}")
PY
fi
echo "workload: $MACHINES machines x $SERIES series at 1s for $DURATION; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ); files in $OUT"
