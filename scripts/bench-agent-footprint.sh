#!/bin/bash
# Agent footprint side by side (docs/benchmarks.md, "Issue #16"): the agent
# build and the full binary of this tree, optionally those of another tree
# (BEFORE=DIR holding sysmonstm and sysmonstm-agent, e.g. main's bin/), and
# node_exporter scraped each second, all in one window of DURATION s (default
# 300) so each sees the same load. CPU from the scheduler's nanosecond
# counters, RSS (VmRSS, RssAnon, RssFile) every second: scripts/sidebyside.py.
set -e
cd "$(dirname "$0")/.."
B=${B:-/tmp/bench-agentfp}
DURATION=${DURATION:-300}
rm -rf $B/hub; mkdir -p $B/hub
make build build-agent >/dev/null
cp bin/sysmonstm bin/sysmonstm-agent $B/
$B/sysmonstm hub --data-dir $B/hub --listen-http 127.0.0.1:18020 --listen-grpc 127.0.0.1:15071 --log-level warn --alerts-defaults=false >/dev/null 2>&1 & HUB=$!
trap 'kill $HUB' EXIT
sleep 3
agent() { # label machine binary
	local tok
	tok=$($B/sysmonstm token create --data-dir $B/hub --machine "$2" 2>/dev/null)
	echo "$1||SYSMONSTM_TOKEN=$tok|$3 agent --hub 127.0.0.1:15071 --machine-id $2 --log-level warn --push-socket $B/$2.sock"
}
jobs=("$(agent agentonly fp1 $B/sysmonstm-agent)" "$(agent full fp2 $B/sysmonstm)")
if [ -n "$BEFORE" ]; then
	jobs+=("$(agent before-agentonly fp3 "$BEFORE/sysmonstm-agent")" "$(agent before-full fp4 "$BEFORE/sysmonstm")")
fi
jobs+=("node_exporter|http://127.0.0.1:19189/metrics||/usr/bin/prometheus-node-exporter --web.listen-address=127.0.0.1:19189")
uptime
python3 scripts/sidebyside.py "$DURATION" 15 "${jobs[@]}"
uptime
