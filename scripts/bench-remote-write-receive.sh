#!/usr/bin/env bash
# bench-remote-write-receive.sh: the same `sysmonstm loadgen --remote-write` workload
# sent, one after the other in one run, to the hub's remote-write receiver,
# VictoriaMetrics and Prometheus (--web.enable-remote-write-receiver), each
# on a fresh data directory. Prints, per receiver, the samples/s loadgen got
# acknowledged and the receiver's CPU seconds (utime+stime from
# /proc/PID/stat, before and after) per million samples, as a Markdown table.
#
# Usage: scripts/bench-remote-write-receive.sh   (MACHINES=1000 SERIES=100 DURATION=60s)
# Needs: go, /usr/bin/victoria-metrics, /usr/bin/prometheus, curl, python3.
set -euo pipefail

MACHINES=${MACHINES:-1000}
SERIES=${SERIES:-100}
DURATION=${DURATION:-60s}

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

bin=$work/sysmonstm
(cd "$root" && GOFLAGS=-buildvcs=false go build -o "$bin" ./cmd/sysmonstm)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
clk=$(getconf CLK_TCK)
cpu_seconds() { # utime+stime of PID, in seconds
	awk -v hz="$clk" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}
wait_http() { # URL: wait until it answers 2xx
	for _ in $(seq 1 300); do
		curl -fs -o /dev/null "$1" && return 0
		sleep 0.1
	done
	echo "no answer from $1" >&2
	exit 1
}

# run NAME PID URL [TOKEN]: send the workload to URL, measure PID.
results=()
run() {
	local name=$1 pid=$2 url=$3 token=${4:-}
	local before after out
	before=$(cpu_seconds "$pid")
	out=$("$bin" loadgen --remote-write "$url" --token "$token" --machines "$MACHINES" --series "$SERIES" \
		--interval 1s --duration "$DURATION" 2>"$work/loadgen.log" | tail -n 1) || true
	after=$(cpu_seconds "$pid")
	if [[ $out != "{"* ]]; then
		echo "loadgen against $name printed no summary:" >&2
		tail -n 20 "$work/loadgen.log" >&2
		exit 1
	fi
	results+=("$(python3 - "$name" "$before" "$after" "$out" <<'EOF'
import json, sys
name, before, after, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), json.loads(sys.argv[4])
acked, errors = out["acked_samples"], out.get("errors", 0)
cpu = after - before
per_m = cpu / (acked / 1e6) if acked else float("nan")
print(f"| {name} | {out['sent_samples']:,} | {acked:,} | {errors} | {out['samples_per_second']:,.0f} | {cpu:.1f} | {per_m:.2f} |")
EOF
)")
}

# The hub: an agent token, remote-written machines grouped by loadgen's
# `machine` label, caps above the workload's series.
hub_port=$(free_port)
"$bin" token create --data-dir "$work/hub" --name bench >"$work/token" 2>/dev/null
token=$(cat "$work/token")
SYSMONSTM_ADMIN_PASSWORD=bench-admin-pw "$bin" hub --data-dir "$work/hub" --listen-http "127.0.0.1:$hub_port" \
	--listen-grpc 127.0.0.1:0 --remote-write-machine-label machine --max-active-series 10000000 --max-machines-per-token 100000 \
	--max-live-series-per-machine 1000 --log-level warn >"$work/hub.log" 2>&1 &
hub_pid=$!
pids+=("$hub_pid")
wait_http "http://127.0.0.1:$hub_port/ready"
run "sysmonstm hub" "$hub_pid" "http://127.0.0.1:$hub_port/api/v1/write" "$token"
kill "$hub_pid"

vm_port=$(free_port)
victoria-metrics -storageDataPath "$work/vm" -httpListenAddr "127.0.0.1:$vm_port" -loggerLevel ERROR >"$work/vm.log" 2>&1 &
vm_pid=$!
pids+=("$vm_pid")
wait_http "http://127.0.0.1:$vm_port/health"
run "VictoriaMetrics $(dpkg-query -W -f='${Version}' victoria-metrics 2>/dev/null || echo "?")" "$vm_pid" "http://127.0.0.1:$vm_port/api/v1/write"
kill "$vm_pid"

prom_port=$(free_port)
echo 'global: {}' >"$work/prometheus.yml"
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prom" --web.listen-address="127.0.0.1:$prom_port" \
	--web.enable-remote-write-receiver --log.level=error >"$work/prom.log" 2>&1 &
prom_pid=$!
pids+=("$prom_pid")
wait_http "http://127.0.0.1:$prom_port/-/ready"
run "Prometheus $(prometheus --version 2>&1 | head -n 1 | awk '{print $3}')" "$prom_pid" "http://127.0.0.1:$prom_port/api/v1/write"
kill "$prom_pid"

echo "workload: loadgen --remote-write, $MACHINES machines x $SERIES series every 1s for $DURATION ($(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ))"
echo
echo "| receiver | sent samples | acknowledged | failed requests | samples/s | CPU s | CPU s per million samples |"
echo "|---|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${results[@]}"
