#!/usr/bin/env bash
# bench-live-latency.sh: agent → WebSocket latency of one hub (issue #16).
# Starts a hub on a fresh data dir and free loopback ports, runs
# `sysmonstm loadgen --watch` against it and prints one line: acked
# samples/s, the watcher's p50/p99/max (from the simulated agent's stamp to
# the client's read), the hub's own receipt → WebSocket write histogram
# (sysmonstm_live_delay_seconds, mean and p99 bucket), hub CPU seconds and
# RSS, its garbage collections, mean commit, and load1 before and after (the figures are only as
# quiet as the machine: say how loaded it was).
#
#   MACHINES=1000 SERIES=100 DURATION=90s scripts/bench-live-latency.sh
#   MACHINES=1000 SERIES=1000 DURATION=10m TICKS=sync scripts/bench-live-latency.sh
#
# TICKS=spread (default: each simulated machine ticks at its own fixed phase
# of the interval) or sync (all on the same wall-clock tick, the worst
# case). WARMUP=DURATION sets loadgen's --watch-warmup (default: loadgen's
# 5 s; a 1 M-series hub spends longer creating its series). WINDOW=DURATION
# (e.g. 10s) also prints the five windows of the run with the highest p99
# (loadgen --watch-window; all of them in $WORK/loadgen.out). BIN=path uses that binary instead of building one;
# LOADGEN_BIN=path runs loadgen from another (a hub A/B with the same load). PROFILE=1
# builds with -tags pprof and writes 30 s CPU profiles of hub and loadgen,
# taken from the middle of the run, to $WORK/{hub,loadgen}.cpu.pprof, and
# what the hub allocated in the same 30 s to $WORK/hub.allocs.pprof.
# PROFILE_AT="22:06:00 22:12:00" (with PROFILE=1; UTC times of day, within
# the run) takes the hub's 30 s CPU and alloc profiles at each instead, to
# $WORK/hub-HHMMSS.{cpu,allocs}.pprof: for a phase such as the hourly pass.
# HUB_ENV="GODEBUG=gctrace=1" (space-separated NAME=VALUE) sets the hub's
# environment (the trace goes to $WORK/hub.log). PRIME=DURATION (e.g. 60s)
# first runs loadgen alone for that long, stops the hub and starts it again
# on the same data directory, then measures: a hub that has held the series
# before, as one does after its first restart (its TSDB head is sized from
# the series it held; hub CPU and GC cycles then count from the restarted
# hub's readiness, after its WAL replay). HUB_FLAGS="--log-level info"
# (space-separated) adds hub flags after the script's own (the last of a
# repeated flag wins). SAMPLE=SECONDS writes, every SECONDS of the measured
# run, one line of the hub's state to $WORK/samples.tsv: time, hub CPU
# seconds, RSS MiB, GC cycles, commits and their total seconds, and the
# MiB of the data dir's WAL, raw chunks and whole tsdb (for runs long enough
# to cross the hourly rollup pass and the raw head's compaction), loadgen's
# CPU seconds, the machine's dirty and under-writeback page cache MiB
# (/proc/meminfo: a pass's files waiting for the disk), and the MiB the
# hub has read from the disk and its major page faults (a mapped file's
# page read from the disk; /proc/PID/io, /proc/PID/stat). Needs curl and python3. Everything is stopped at exit; $WORK (default a
# new temp dir) keeps the logs.
set -euo pipefail
MACHINES=${MACHINES:-1000}
SERIES=${SERIES:-100}
DURATION=${DURATION:-90s}
TICKS=${TICKS:-spread}
PROFILE=${PROFILE:-0}
WARMUP=${WARMUP:-}
WORK=${WORK:-$(mktemp -d /tmp/bench-live-latency.XXXXXX)}

cd "$(dirname "$0")/.."
if [[ -z ${BIN:-} ]]; then
  BIN=$WORK/sysmonstm
  tags=()
  [[ $PROFILE == 1 ]] && tags=(-tags pprof)
  CGO_ENABLED=0 go build "${tags[@]}" -trimpath -o "$BIN" ./cmd/sysmonstm
fi
LG=${LOADGEN_BIN:-$BIN}
warmflag=()
[[ -n $WARMUP ]] && warmflag=(--watch-warmup "$WARMUP")
[[ -n ${WINDOW:-} ]] && warmflag+=(--watch-window "$WINDOW")
case $TICKS in
  spread) tickflag=() ;;
  sync) tickflag=(--sync-ticks) ;;
  *) echo "bench-live-latency: TICKS=$TICKS: want spread or sync" >&2; exit 2 ;;
esac

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
secs() { # secs DURATION: seconds of a Go duration such as 90s, 10m, 1m30s
  python3 -c 'import re,sys; print(sum(int(n)*{"h":3600,"m":60,"s":1}[u] for n,u in re.findall(r"(\d+)([hms])", sys.argv[1])))' "$1"
}
metric() { grep -E "^$1 " "$WORK/metrics.txt" | awk '{print $2}' | head -n 1; }

D=$WORK/data
H=127.0.0.1:$(freeport)
G=127.0.0.1:$(freeport)
read -r -a hub_env <<<"${HUB_ENV:-}"
read -r -a hub_flags <<<"${HUB_FLAGS:-}"
lg_env=()
if [[ $PROFILE == 1 ]]; then
  hub_pprof=127.0.0.1:$(freeport)
  hub_env+=(SYSMONSTM_PPROF_LISTEN=$hub_pprof)
  lg_env=(SYSMONSTM_PPROF_LISTEN=127.0.0.1:$(freeport))
fi
TOKEN=$("$BIN" token create --data-dir "$D" --name loadgen 2>/dev/null | head -n 1)
start_hub() { # start_hub LOG: start the hub on $D and wait until it is ready
  date -u +%s.%N >"$1.started" # gctrace's "@SECONDS" count from about here
  env "${hub_env[@]}" "$BIN" hub --data-dir "$D" --listen-http "$H" --listen-grpc "$G" --log-level warn \
    --max-machines-per-token "$MACHINES" --max-active-series 3000000 "${hub_flags[@]}" >"$1" 2>&1 &
  hub_pid=$!
  pids+=("$hub_pid")
  local t0=$SECONDS
  until curl -fsS "http://$H/ready" >/dev/null 2>&1; do
    if ! kill -0 "$hub_pid" 2>/dev/null || ((SECONDS - t0 > 600)); then
      echo "bench-live-latency: hub never became ready; end of $1:" >&2
      tail -n 5 "$1" >&2
      exit 1
    fi
    sleep 0.2
  done
}
if [[ -n ${HEAD_SERIES:-} ]]; then
  mkdir -p "$D/tsdb"
  printf '{"version":1,"machines":{},"raw_head_series":%d}\n' "$HEAD_SERIES" >"$D/tsdb/rollup-state.json"
fi
start_hub "$WORK/hub.log"
if [[ -n ${PRIME:-} ]]; then
  "$LG" loadgen --hub "$G" --token "$TOKEN" --machines "$MACHINES" --series "$SERIES" \
    --interval 1s --duration "$PRIME" "${tickflag[@]}" --log-level warn >"$WORK/prime.out" 2>&1
  kill -TERM "$hub_pid"
  wait "$hub_pid" || true
  mv "$WORK/hub.log" "$WORK/hub-prime.log"
  echo "primed $PRIME: the hub's saved state records $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("raw_head_series", 0))' "$D/tsdb/rollup-state.json") raw head series"
  start_hub "$WORK/hub.log"
fi
clk=$(getconf CLK_TCK)
cpu0=$(awk '{print $14 + $15}' "/proc/$hub_pid/stat")
gc0=$(curl -fsS "http://$H/metrics" | awk '$1 == "go_gc_duration_seconds_count" {print $2}')

load0=$(cut -d' ' -f1 /proc/loadavg)
env "${lg_env[@]}" "$LG" loadgen --hub "$G" --token "$TOKEN" --machines "$MACHINES" --series "$SERIES" \
  --interval 1s --duration "$DURATION" "${tickflag[@]}" "${warmflag[@]}" --watch "ws://$H/ws" --log-level warn >"$WORK/loadgen.out" 2>&1 &
lg_pid=$!
pids+=("$lg_pid")
if [[ -n ${SAMPLE:-} ]]; then
  (
    printf 'time\thub_cpu_s\trss_mib\tgc_cycles\tcommits\tcommit_s\twal_mib\tchunks_mib\ttsdb_mib\tloadgen_cpu_s\tdirty_mib\twriteback_mib\thub_read_mib\thub_major_faults\n'
    while kill -0 "$lg_pid" 2>/dev/null; do
      m=$(curl -fsS --max-time 5 "http://$H/metrics" 2>/dev/null || true)
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%H:%M:%S)" \
        "$(awk -v hz="$clk" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$hub_pid/stat" 2>/dev/null)" \
        "$(awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$hub_pid/status" 2>/dev/null)" \
        "$(awk '$1 == "go_gc_duration_seconds_count" {print $2}' <<<"$m")" \
        "$(awk '$1 == "sysmonstm_ingest_commit_seconds_count" {print $2}' <<<"$m")" \
        "$(awk '$1 == "sysmonstm_ingest_commit_seconds_sum" {printf "%.1f", $2}' <<<"$m")" \
        "$(du -sm "$D/tsdb/raw/wal" 2>/dev/null | cut -f1)" \
        "$(du -sm "$D/tsdb/raw/chunks_head" 2>/dev/null | cut -f1)" \
        "$(du -sm "$D/tsdb" 2>/dev/null | cut -f1)" \
        "$(awk -v hz="$clk" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$lg_pid/stat" 2>/dev/null)" \
        "$(awk '/^Dirty:/ {printf "%.0f", $2 / 1024}' /proc/meminfo)" \
        "$(awk '/^Writeback:/ {printf "%.0f", $2 / 1024}' /proc/meminfo)" \
        "$(awk '$1 == "read_bytes:" {printf "%.0f", $2 / 1048576}' "/proc/$hub_pid/io" 2>/dev/null)" \
        "$(awk '{print $12}' "/proc/$hub_pid/stat" 2>/dev/null)"
      sleep "$SAMPLE"
    done
  ) >"$WORK/samples.tsv" 2>/dev/null &
  pids+=("$!")
fi
if [[ $PROFILE == 1 ]]; then
  for at in ${PROFILE_AT:-}; do
    (
      wait_s=$(($(date -u -d "$at" +%s) - $(date -u +%s)))
      ((wait_s >= 0)) || exit 0
      sleep "$wait_s"
      curl -fsS -o "$WORK/hub-${at//:/}.cpu.pprof" "http://$hub_pprof/debug/pprof/profile?seconds=30" &
      curl -fsS -o "$WORK/hub-${at//:/}.allocs.pprof" "http://$hub_pprof/debug/pprof/allocs?seconds=30" &
      wait
    ) &
    pids+=("$!")
  done
  if [[ -z ${PROFILE_AT:-} ]]; then # the hub serves one CPU profile at a time
    total=$(secs "$DURATION")
    sleep $(((total - 30) / 2))
    curl -fsS -o "$WORK/hub.cpu.pprof" "http://$hub_pprof/debug/pprof/profile?seconds=30" &
    curl -fsS -o "$WORK/loadgen.cpu.pprof" "http://${lg_env[0]#*=}/debug/pprof/profile?seconds=30" &
    curl -fsS -o "$WORK/hub.allocs.pprof" "http://$hub_pprof/debug/pprof/allocs?seconds=30" &
  fi
fi
wait "$lg_pid" || true
load1=$(cut -d' ' -f1 /proc/loadavg)
curl -fsS "http://$H/metrics" >"$WORK/metrics.txt"
cpu=$(awk -v hz="$clk" -v c0="$cpu0" '{printf "%.1f", ($14 + $15 - c0) / hz}' "/proc/$hub_pid/stat")
rss=$(awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$hub_pid/status")
sum=$(grep '^{' "$WORK/loadgen.out" | tail -n 1)
[[ -n $sum ]] || { echo "bench-live-latency: no summary; end of $WORK/loadgen.out:" >&2; tail -n 5 "$WORK/loadgen.out" >&2; exit 1; }
python3 - "$sum" "$WORK/metrics.txt" "$MACHINES" "$SERIES" "$TICKS" "$DURATION" "$cpu" "$rss" "$load0" "$load1" "${gc0:-0}" <<'EOF'
import json, re, sys
s = json.loads(sys.argv[1]); lines = open(sys.argv[2]).read().splitlines()
def val(name):
    for l in lines:
        if l.startswith(name + " "): return float(l.split()[1])
    return 0.0
def hist(stage):
    sel = 'stage="%s"' % stage
    b = [(float(re.search(r'le="([^"]+)"', l).group(1)), float(l.split()[1]))
         for l in lines if l.startswith("sysmonstm_live_delay_seconds_bucket{") and sel in l]
    n = val('sysmonstm_live_delay_seconds_count{%s}' % sel); tot = val('sysmonstm_live_delay_seconds_sum{%s}' % sel)
    if not n: return "n/a"
    p99 = next(le for le, c in sorted(b) if c >= 0.99 * n)
    return "mean=%.2fms p99<=%gms" % (1000 * tot / n, 1000 * p99)
lv = s.get("live_latency") or {}
cc = val("sysmonstm_ingest_commit_seconds_count")
print("machines=%s series=%s ticks=%s duration=%s acked/s=%.1f errors=%d events=%d p50=%sms p99=%sms max=%sms%s"
      " hub_publish[%s] hub_ws[%s] hub_cpu=%ss hub_rss=%sMiB hub_gc_cycles=%d mean_commit=%.2fms load1=%s->%s" % (
    sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], s["samples_per_second"], s["errors"], lv.get("events", 0),
    lv.get("p50_ms"), lv.get("p99_ms"), lv.get("max_ms"), (" watch_error=" + lv["error"]) if lv.get("error") else "",
    hist("publish"), hist("websocket"), sys.argv[7], sys.argv[8], val("go_gc_duration_seconds_count") - float(sys.argv[11]),
    1000 * val("sysmonstm_ingest_commit_seconds_sum") / cc if cc else 0, sys.argv[9], sys.argv[10]))
ws = lv.get("windows") or []
if len(ws) >= 2 and "over_50ms" in ws[0]:  # (a loadgen before the counts has none) every 10-minute run of windows: the share of its events later than each target
    from datetime import datetime
    t = [datetime.fromisoformat(w["start"].replace("Z", "+00:00")).timestamp() for w in ws]
    n = max(1, round(600 / (t[1] - t[0])))
    if len(ws) >= n:
        spans = [(ws[i]["start"], sum(w["events"] for w in ws[i:i + n]), sum(w.get("over_10ms", 0) for w in ws[i:i + n]),
                  sum(w.get("over_50ms", 0) for w in ws[i:i + n])) for i in range(len(ws) - n + 1)]
        for k, name in ((3, "50"), (2, "10")):
            s0 = max(spans, key=lambda x: x[k] / max(1, x[1]))
            print("  10-minute spans: %d; worst for %s ms from %s: %.2f%% of %d events over %s ms (p99 <= %s ms when <= 1%%)" % (
                len(spans), name, s0[0], 100 * s0[k] / max(1, s0[1]), s0[1], name, name))
for w in sorted(ws, key=lambda w: -w["p99_ms"])[:5]:
    print("  window %s: events=%d p50=%sms p99=%sms max=%sms" % (w["start"], w["events"], w["p50_ms"], w["p99_ms"], w["max_ms"]))
EOF
