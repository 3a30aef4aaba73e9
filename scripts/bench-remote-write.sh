#!/usr/bin/env bash
# bench-remote-write.sh: agent ingest rate (loadgen → hub) with and without
# `hub --remote-write` to a local VictoriaMetrics, alternated PAIRS times,
# and the remote-write queue's lag during and after each "on" run.
#
#   MACHINES=1000 SERIES=100 DURATION=60s PAIRS=2 scripts/bench-remote-write.sh
#
# MODES (default "off on") picks the runs of each pair: off (no remote
# write), on (to VictoriaMetrics), queued (to a port where nothing listens:
# every sample is queued and retried, nothing sent — the cost on the ingest
# path alone, without a receiver competing for the CPU).
#
# Needs victoria-metrics on PATH. Ports 18000/15051/18428 on 127.0.0.1 (or
# HUB_HTTP/HUB_GRPC/VM_ADDR). Prints one line per run and leaves its data in
# $WORK (default a new temp dir).
set -euo pipefail
MACHINES=${MACHINES:-1000}
SERIES=${SERIES:-100}
DURATION=${DURATION:-60s}
PAIRS=${PAIRS:-2}
MODES=${MODES:-off on}
HUB_HTTP=${HUB_HTTP:-127.0.0.1:18000}
HUB_GRPC=${HUB_GRPC:-127.0.0.1:15051}
VM_ADDR=${VM_ADDR:-127.0.0.1:18428}
WORK=${WORK:-$(mktemp -d /tmp/bench-rw.XXXXXX)}
BIN=$WORK/sysmonstm

cd "$(dirname "$0")/.."
go build -o "$BIN" ./cmd/sysmonstm
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

metric() { # metric NAME: sum of its samples in the hub's /metrics
  curl -fsS "http://$HUB_HTTP/metrics" | awk -v n="$1" '$1 ~ "^"n"({|$)" {s+=$NF} END {printf "%.1f", s+0}'
}

victoria-metrics -storageDataPath "$WORK/vm" -httpListenAddr "$VM_ADDR" -retentionPeriod 100y -loggerLevel WARN >"$WORK/vm.log" 2>&1 &
vmpid=$!
pids+=("$vmpid")
until curl -fsS "http://$VM_ADDR/health" >/dev/null 2>&1; do sleep 0.2; done

run() { # run MODE N
  local mode=$1 n=$2 dir=$WORK/hub-$1-$2 extra=()
  [[ $mode == on ]] && extra=(--remote-write "http://$VM_ADDR/api/v1/write")
  [[ $mode == queued ]] && extra=(--remote-write "http://127.0.0.1:9/api/v1/write")
  local tok
  tok=$("$BIN" token create --data-dir "$dir" --name loadgen)
  "$BIN" hub --data-dir "$dir" --listen-http "$HUB_HTTP" --listen-grpc "$HUB_GRPC" --log-level warn \
    --max-machines-per-token "$MACHINES" "${extra[@]}" >"$dir.log" 2>&1 &
  local hub=$!
  pids+=("$hub")
  until curl -fsS "http://$HUB_HTTP/ready" >/dev/null 2>&1; do sleep 0.2; done
  local maxlag=0
  (
    while sleep 5; do
      [[ $mode != off ]] && metric sysmonstm_remote_write_lag_seconds >>"$dir.lag" && echo >>"$dir.lag"
    done
  ) &
  local sampler=$!
  "$BIN" loadgen --hub "$HUB_GRPC" --token "$tok" --machines "$MACHINES" --series "$SERIES" --interval 1s \
    --duration "$DURATION" --log-level warn >"$dir.loadgen" 2>&1 || true
  kill "$sampler" 2>/dev/null || true
  local rate
  rate=$(grep "^{" "$dir.loadgen" | tail -n 1 | sed -n 's/.*"samples_per_second":\([0-9.]*\).*/\1/p')
  local cpu
  cpu=$(metric process_cpu_seconds_total)
  local errs
  errs=$(grep "^{" "$dir.loadgen" | tail -n 1 | sed -n 's/.*"errors":\([0-9]*\).*/\1/p')
  local line="mode=$mode run=$n samples_per_second=${rate%.*} loadgen_errors=${errs:-?} hub_cpu_s=$cpu load1=$(cut -d' ' -f1 /proc/loadavg)"
  if [[ $mode == queued ]]; then
    line+=" pending_at_end=$(metric sysmonstm_remote_write_pending_samples) queue_bytes_on_disk=$(du -sb "$dir/remote-write" | cut -f1) dropped=$(metric sysmonstm_remote_write_dropped_samples_total)"
  fi
  if [[ $mode == on ]]; then
    maxlag=$(sort -g "$dir.lag" 2>/dev/null | tail -n 1)
    local pending drain=0
    pending=$(metric sysmonstm_remote_write_pending_samples)
    local t0=$SECONDS
    while [[ $(metric sysmonstm_remote_write_pending_samples) != 0.0 ]] && ((SECONDS - t0 < 600)); do sleep 1; done
    drain=$((SECONDS - t0))
    line+=" max_lag_s=${maxlag:-0} pending_at_end=$pending drain_s=$drain sent=$(metric sysmonstm_remote_write_sent_samples_total) dropped=$(metric sysmonstm_remote_write_dropped_samples_total) queue_bytes_on_disk=$(du -sb "$dir/remote-write" | cut -f1)"
  fi
  echo "$line"
  kill "$hub"
  wait "$hub" 2>/dev/null || true
}

echo "# $(date -u +%FT%TZ) machines=$MACHINES series=$SERIES duration=$DURATION work=$WORK"
for i in $(seq 1 "$PAIRS"); do
  for m in $MODES; do run "$m" "$i"; done
done
